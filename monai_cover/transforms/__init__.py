"""SeVR: random spatial fields with ground truth, the two views, appearance changes, the valid mask."""

from monai_cover.transforms.appearance import APPEARANCE_PRESETS, ViewAppearance
from monai_cover.transforms.array import RandCoverViews
from monai_cover.transforms.dictionary import RandCoverViewsD, RandCoverViewsd, RandCoverViewsDict
from monai_cover.transforms.geometry import (
    ROTATION_SAMPLINGS,
    ViewGeometry,
    default_ranges,
    load_size_for,
    slab_view_ranges,
)
from monai_cover.transforms.pairs import ViewPairs
from monai_cover.transforms.params import PAIR_KINDS, ViewParams
from monai_cover.transforms.sampler import CoverViewSampler

__all__ = [
    "CoverViewSampler", "ViewGeometry", "ViewAppearance", "ViewPairs", "ViewParams", "PAIR_KINDS",
    "APPEARANCE_PRESETS", "ROTATION_SAMPLINGS", "default_ranges", "load_size_for", "slab_view_ranges",
    "RandCoverViews", "RandCoverViewsd", "RandCoverViewsD", "RandCoverViewsDict",
]
