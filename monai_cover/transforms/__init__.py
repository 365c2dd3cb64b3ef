"""SeVR: random spatial fields with ground truth, the two views, appearance changes, the valid mask."""

from monai_cover.transforms.array import RandCoverViews
from monai_cover.transforms.dictionary import RandCoverViewsD, RandCoverViewsd, RandCoverViewsDict
from monai_cover.transforms.sampler import CoverViewSampler, ViewParams, default_ranges, load_size_for, slab_view_ranges

__all__ = [
    "CoverViewSampler", "ViewParams", "default_ranges", "load_size_for", "slab_view_ranges",
    "RandCoverViews", "RandCoverViewsd", "RandCoverViewsD", "RandCoverViewsDict",
]
