"""SeVR: random spatial fields with ground truth, the two views, appearance changes, the valid mask."""

from monai_cover.transforms.array import RandCoverViews
from monai_cover.transforms.dictionary import RandCoverViewsD, RandCoverViewsd, RandCoverViewsDict
from monai_cover.transforms.sampler import CoverViewSampler, ViewParams, default_ranges, load_size_for

__all__ = [
    "CoverViewSampler", "ViewParams", "default_ranges", "load_size_for",
    "RandCoverViews", "RandCoverViewsd", "RandCoverViewsD", "RandCoverViewsDict",
]
