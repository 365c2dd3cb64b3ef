"""Transforms: SeVR views (random spatial fields with ground truth, the two views, appearance changes, the valid
mask), and the MONAI array/dictionary transforms the bundles load, check, scale and save images with."""

from monai_cover.transforms.appearance import APPEARANCE_PRESETS, ViewAppearance
from monai_cover.transforms.array import RandCoverViews
from monai_cover.transforms.checks import CheckImage, CheckImaged
from monai_cover.transforms.compose import CheckedCompose
from monai_cover.transforms.dictionary import RandCoverViewsD, RandCoverViewsd, RandCoverViewsDict
from monai_cover.transforms.geometry import (
    ROTATION_SAMPLINGS,
    ViewGeometry,
    default_ranges,
    load_size_for,
    slab_view_ranges,
)
from monai_cover.transforms.intensity import HUWindowd, intensity_scalingd, percentile_scaling, percentile_scalingd
from monai_cover.transforms.io import SafeLoadImage, SafeLoadImaged, to_ras
from monai_cover.transforms.pairs import ViewPairs
from monai_cover.transforms.params import PAIR_KINDS, ViewParams
from monai_cover.transforms.sampler import CoverViewSampler
from monai_cover.transforms.save import PredictionLayout, SaveDicomSegd, SavePredictiond
from monai_cover.transforms.sequences import (
    LoadSequence,
    LoadSequenced,
    RandFrameWindowd,
    load_frame_label,
    load_sequence,
)
from monai_cover.transforms.views import view_appearance, view_geometry, view_pairs

__all__ = [
    "view_appearance", "view_geometry", "view_pairs",
    "CoverViewSampler", "ViewGeometry", "ViewAppearance", "ViewPairs", "ViewParams", "PAIR_KINDS",
    "APPEARANCE_PRESETS", "ROTATION_SAMPLINGS", "default_ranges", "load_size_for", "slab_view_ranges",
    "RandCoverViews", "RandCoverViewsd", "RandCoverViewsD", "RandCoverViewsDict",
    "CheckImage", "CheckImaged", "CheckedCompose", "HUWindowd", "intensity_scalingd", "percentile_scaling",
    "percentile_scalingd", "SafeLoadImage", "SafeLoadImaged", "to_ras", "PredictionLayout", "SaveDicomSegd",
    "SavePredictiond", "LoadSequence", "LoadSequenced", "RandFrameWindowd", "load_frame_label", "load_sequence",
]
