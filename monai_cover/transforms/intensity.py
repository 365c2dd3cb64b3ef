"""The intensity scaling of every input, one definition for pretraining, fine-tuning, inference and propagation (a
network sees the intensities it was trained on): for MRI, X-ray, photos and sequences (``intensity "percentile"``)
the 0.5th-99.5th percentiles of each image mapped to ``[0, 1]``, clipped; for CT (``intensity "ct"``) a fixed HU
window mapped to ``[0, 1]``, clipped, ``[-1000, 1000]`` or any ``[low, high]`` given as the setting itself (e.g.
``--intensity "[-160, 240]"``, a soft-tissue window). The pretrained backbone records which (``model.json``), so
fine-tuning and feature extraction scale as pretraining did unless told otherwise."""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from typing import Any

from monai.transforms import (
    MapTransform,
    ScaleIntensityRanged,
    ScaleIntensityRangePercentiles,
    ScaleIntensityRangePercentilesd,
)

from monai_cover.errors import BadSettingError

__all__ = ["CT_WINDOW", "HUWindowd", "INTENSITIES", "PERCENTILES", "intensity_scalingd", "intensity_window",
           "percentile_scaling", "percentile_scalingd"]

#: the lower and upper percentile mapped to 0 and 1
PERCENTILES = (0.5, 99.5)
#: the HU range mapped to 0 and 1 with ``intensity "ct"`` (air to dense bone)
CT_WINDOW = (-1000.0, 1000.0)
#: the ``intensity`` settings
INTENSITIES = ("percentile", "ct")


def percentile_scaling(channel_wise: bool = False) -> ScaleIntensityRangePercentiles:
    """Array transform ``(C, *S) -> (C, *S)`` in ``[0, 1]``; ``channel_wise``: each channel by its own percentiles
    (co-registered modalities), else all channels together (colour, a sequence's frames)."""
    return ScaleIntensityRangePercentiles(*PERCENTILES, b_min=0.0, b_max=1.0, clip=True, channel_wise=channel_wise)


def percentile_scalingd(keys: Hashable | Sequence[Hashable], channel_wise: bool = False
                        ) -> ScaleIntensityRangePercentilesd:
    """Dictionary version of :func:`percentile_scaling`."""
    return ScaleIntensityRangePercentilesd(keys, *PERCENTILES, b_min=0.0, b_max=1.0, clip=True,
                                           channel_wise=channel_wise)


def intensity_window(intensity: Any) -> tuple[float, float] | None:
    """The fixed window an ``intensity`` setting maps to ``[0, 1]``: :data:`CT_WINDOW` for ``"ct"``, ``(low, high)``
    for a pair of numbers, ``None`` for ``"percentile"``.

    Raises:
        BadSettingError: anything else, or a window that is not two finite numbers with ``low < high`` (one line).
    """
    if intensity == "percentile":
        return None
    if intensity == "ct":
        return CT_WINDOW
    if isinstance(intensity, (list, tuple)) and len(intensity) == 2:
        try:
            low, high = (float(v) for v in intensity)
        except (TypeError, ValueError):
            low = high = math.nan
        if math.isfinite(low) and math.isfinite(high) and low < high:
            return low, high
        raise BadSettingError(f"--intensity {list(intensity)!r}: a window is two finite numbers, low < high (e.g. "
                              "\"[-160, 240]\" HU for soft tissue)")
    raise BadSettingError(f"--intensity {intensity!r}: expected one of {', '.join(INTENSITIES)} or a window \"[low, "
                          "high]\" (percentile for MRI, X-ray and photos; ct for the HU window -1000..1000)")


def intensity_scalingd(keys: Hashable | Sequence[Hashable], intensity: Any = "percentile",
                       channel_wise: bool = False) -> MapTransform:
    """The scaling an ``intensity`` setting names: ``"percentile"`` (:func:`percentile_scalingd`, ``channel_wise``
    for co-registered modalities), ``"ct"`` or ``[low, high]`` (that window, in the image's units, e.g. HU ->
    ``[0, 1]``, clipped; :func:`intensity_window`).

    Raises:
        BadSettingError: another ``intensity`` (one line naming the choices).
    """
    window = intensity_window(intensity)
    if window is None:
        return percentile_scalingd(keys, channel_wise=channel_wise)
    return HUWindowd(keys, intensity, window)


#: file formats that hold 8-bit pictures, never Hounsfield units
PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


class HUWindowd(ScaleIntensityRanged):
    """A fixed window (``window`` in the image's units, e.g. HU) mapped to ``[0, 1]``, clipped. A window in
    Hounsfield units (``ct``, or one reaching below 0) on an input read from an 8-bit picture format stops in one
    line instead: it would squeeze the picture's 0..255 into a sliver of ``[0, 1]``. ``intensity``: the setting."""

    def __init__(self, keys: Hashable | Sequence[Hashable], intensity: Any, window: tuple[float, float]) -> None:
        super().__init__(keys, a_min=window[0], a_max=window[1], b_min=0.0, b_max=1.0, clip=True)
        self.intensity, self.window = intensity, window

    def __call__(self, data):
        hounsfield = self.intensity == "ct" or self.window[0] < 0  # pictures hold no negative values
        for key in self.key_iterator(dict(data)):
            source = getattr(data[key], "meta", {}).get("filename_or_obj", "")
            if hounsfield and str(source).lower().endswith(PICTURE_SUFFIXES):
                raise BadSettingError(f"--intensity {self.intensity}: a window in Hounsfield units, but {source} is an "
                                      "8-bit picture, which holds none (use --intensity percentile for radiographs, "
                                      "photos and MRI)")
        return super().__call__(data)
