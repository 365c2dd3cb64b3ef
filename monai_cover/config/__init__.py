"""The bundles' settings: declared once (:mod:`.declarations`), checked before a run builds anything
(:func:`check_bundle`)."""

from monai_cover.config.bundle_check import check_bundle, check_known, running_parser
from monai_cover.config.declarations import BUNDLES, MODEL, RUN, WEIGHTS, BundleDeclaration, Setting

__all__ = ["BUNDLES", "BundleDeclaration", "MODEL", "RUN", "Setting", "WEIGHTS", "check_bundle", "check_known",
           "running_parser"]
