from monai_cover.networks.blocks import MixtureOfVectors, VectorPyramidAggregation, warp
from monai_cover.networks.nets import CoverFeatureNet, CoverNet, CoverSegNet, CoverUNet

__all__ = [
    "MixtureOfVectors", "VectorPyramidAggregation", "warp", "CoverNet", "CoverFeatureNet", "CoverSegNet", "CoverUNet",
]
