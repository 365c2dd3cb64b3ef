from monai_cover.data.auto_size import auto_roi_size, auto_view_sizes
from monai_cover.data.caching import training_dataset
from monai_cover.data.checks import CheckImage, CheckImaged
from monai_cover.data.datalist import (
    IMAGE_SUFFIXES,
    find_images,
    find_pairs,
    holdout,
    is_dicom_file,
    load_datalist,
    seg_datalists,
)
from monai_cover.data.dicom import check_dicom_folder
from monai_cover.data.dicom_seg import SaveDicomSegd, dicom_segmentation, dicom_sources
from monai_cover.data.intensity import intensity_scalingd, percentile_scaling, percentile_scalingd
from monai_cover.data.loading import SafeLoadImage, SafeLoadImaged, to_ras
from monai_cover.data.pipeline import CheckedCompose, filter_readable, usable_items
from monai_cover.data.predictions import PredictionLayout, PredictionPlan, SavePredictiond, prediction_root
from monai_cover.data.seg_transforms import seg_postprocessing, seg_preprocessing
from monai_cover.data.sequences import (
    LoadSequence,
    LoadSequenced,
    RandFrameWindowd,
    find_sequences,
    load_frame_label,
    load_sequence,
)
from monai_cover.data.transforms import pretrain_transforms

__all__ = [
    "auto_roi_size", "auto_view_sizes", "CheckImage", "CheckImaged", "CheckedCompose",
    "SafeLoadImage", "SafeLoadImaged", "training_dataset",
    "check_dicom_folder", "SaveDicomSegd", "dicom_segmentation", "dicom_sources", "filter_readable", "usable_items",
    "IMAGE_SUFFIXES", "find_images", "find_pairs", "holdout", "is_dicom_file", "load_datalist", "pretrain_transforms",
    "seg_datalists", "seg_postprocessing", "seg_preprocessing", "PredictionLayout",
    "PredictionPlan", "SavePredictiond",
    "prediction_root", "LoadSequence", "LoadSequenced", "RandFrameWindowd", "find_sequences", "load_frame_label",
    "load_sequence", "to_ras", "intensity_scalingd", "percentile_scaling", "percentile_scalingd",
]
