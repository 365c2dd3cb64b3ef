"""The bundles' settings: declared once (:mod:`.declarations`), checked before a run builds anything
(:func:`check_bundle`)."""

from monai_cover.config.bundle_check import check_bundle, check_known, running_parser
from monai_cover.config.declarations import BUNDLES, MODEL, RUN, WEIGHTS, BundleDeclaration, Setting
from monai_cover.config.rules import (
    check_crops_per_image,
    check_modalities,
    check_modality_intensity,
    check_slicewise,
    check_temporal,
    check_trained_settings,
    fit_patch_size,
    image_channels,
    network_dims,
    seg_image_size,
    seg_input_channels,
    seg_max_epochs,
    seg_output_channels,
    seg_patch_size,
    temporal_pairs,
)

__all__ = [
    "BUNDLES", "BundleDeclaration", "MODEL", "RUN", "Setting", "WEIGHTS", "check_bundle", "check_crops_per_image",
    "check_known", "check_modalities", "check_modality_intensity", "check_slicewise", "check_temporal",
    "check_trained_settings", "fit_patch_size", "image_channels", "network_dims", "running_parser",
    "seg_image_size", "seg_input_channels", "seg_max_epochs", "seg_output_channels", "seg_patch_size",
    "temporal_pairs",
]
