from monai_cover.losses.consistency import ConsistencyLoss
from monai_cover.losses.cover import CoverLoss
from monai_cover.losses.vector import VectorLoss

__all__ = ["ConsistencyLoss", "CoverLoss", "VectorLoss"]
