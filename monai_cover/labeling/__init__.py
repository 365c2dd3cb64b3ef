"""Interactive labeling (MONAI Label) with cover_seg: retraining on the labels saved so far, run after run, and choosing
the next image to label by COVER features.

Nothing here imports MONAI Label: the app under ``apps/cover_label`` is the glue (a ``TrainTask`` and a ``Strategy``
calling these functions), so the logic runs and is tested in the project's own environment. Imported on its own
(``import monai_cover.labeling``), like :mod:`monai_cover.deploy`.
"""

from monai_cover.labeling.features import FeatureIndex, farthest_unlabeled, pooled_descriptor
from monai_cover.labeling.retrain import RETRAIN_OPTIONS, retrain, train_options
from monai_cover.labeling.runs import (
    LabeledImage,
    RetrainRuns,
    file_sha1,
    labeled_images,
    promote,
    served_run,
    split_validation,
)

__all__ = [
    "FeatureIndex", "LabeledImage", "RETRAIN_OPTIONS", "RetrainRuns", "farthest_unlabeled", "file_sha1",
    "labeled_images", "pooled_descriptor", "promote", "retrain", "served_run", "split_validation", "train_options",
]
