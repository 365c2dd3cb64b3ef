from monai_cover.losses.consistency import ConsistencyLoss
from monai_cover.losses.cover import CoverLoss
from monai_cover.losses.methods import PRETRAIN_METHODS, pretrain_loss, seg_loss
from monai_cover.losses.pixel_contrast import PixelContrastLoss
from monai_cover.losses.temporal import TemporalCoverLoss
from monai_cover.losses.vector import VectorLoss

__all__ = [
    "PRETRAIN_METHODS", "ConsistencyLoss", "CoverLoss", "PixelContrastLoss", "TemporalCoverLoss", "VectorLoss",
    "pretrain_loss", "seg_loss",
]
