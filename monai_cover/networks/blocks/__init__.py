from monai_cover.networks.blocks.hypercolumn import hypercolumn
from monai_cover.networks.blocks.local_correlation import local_correlation, window_offsets
from monai_cover.networks.blocks.mov import MixtureOfVectors, mixture_of_vectors
from monai_cover.networks.blocks.mov_loop import mixture_of_vectors_loop
from monai_cover.networks.blocks.softmax_expectation import softmax_expectation
from monai_cover.networks.blocks.vpa import VectorPyramidAggregation
from monai_cover.networks.blocks.warp import upsample_field, warp

__all__ = [
    "hypercolumn", "local_correlation", "window_offsets", "MixtureOfVectors", "mixture_of_vectors",
    "mixture_of_vectors_loop", "softmax_expectation",
    "VectorPyramidAggregation", "upsample_field", "warp",
]
