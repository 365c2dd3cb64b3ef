"""Datalists, datasets and caching, DICOM input and DICOM SEG building, the pipelines the bundles build from their
settings, and which predictions an inference run writes (the transforms themselves are in
:mod:`monai_cover.transforms`)."""

from monai_cover.data.auto_size import auto_roi_size, auto_view_sizes
from monai_cover.data.caching import training_dataset
from monai_cover.data.datalist import (
    IMAGE_SUFFIXES,
    find_images,
    find_pairs,
    find_sequences,
    holdout,
    is_dicom_file,
    load_datalist,
    pretrain_items,
    seg_datalists,
    seg_test_datalist,
)
from monai_cover.data.dicom import check_dicom_folder
from monai_cover.data.dicom_seg import dicom_segmentation, dicom_sources
from monai_cover.data.pipeline import filter_readable, usable_items
from monai_cover.data.predictions import PredictionPlan, prediction_root
from monai_cover.data.pretrain_pipeline import (
    feature_image_size,
    feature_postprocessing,
    feature_preprocessing,
    pretrain_loader,
    pretrain_transforms,
)
from monai_cover.data.seg_pipeline import (
    model_postprocessing,
    model_preprocessing,
    prediction_savers,
    seg_postprocessing,
    seg_preprocessing,
    seg_rotate_range,
)

__all__ = [
    "auto_roi_size", "auto_view_sizes", "training_dataset", "check_dicom_folder", "dicom_segmentation", "dicom_sources",
    "filter_readable", "usable_items", "IMAGE_SUFFIXES", "find_images", "find_pairs", "find_sequences", "holdout",
    "is_dicom_file", "load_datalist", "pretrain_loader", "pretrain_transforms", "feature_image_size",
    "feature_postprocessing", "feature_preprocessing", "seg_datalists", "seg_test_datalist", "pretrain_items",
    "seg_postprocessing", "seg_preprocessing", "seg_rotate_range", "model_preprocessing", "model_postprocessing",
    "prediction_savers", "PredictionPlan", "prediction_root",
]
