"""The intensity scaling of every input, one definition for pretraining, fine-tuning, inference and propagation (a
network sees the intensities it was trained on): for MRI, X-ray, photos and sequences (``intensity "percentile"``)
the 0.5th-99.5th percentiles of each image mapped to ``[0, 1]``, clipped; for CT (``intensity "ct"``) a fixed HU
window mapped to ``[0, 1]``, clipped. The pretrained backbone records which (``model.json``), so fine-tuning and
feature extraction scale as pretraining did unless told otherwise."""

from __future__ import annotations

from collections.abc import Hashable, Sequence

from monai.transforms import (
    MapTransform,
    ScaleIntensityRanged,
    ScaleIntensityRangePercentiles,
    ScaleIntensityRangePercentilesd,
)

from monai_cover.settings import BadSettingError

__all__ = ["CT_WINDOW", "INTENSITIES", "PERCENTILES", "intensity_scalingd", "percentile_scaling",
           "percentile_scalingd"]

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


def intensity_scalingd(keys: Hashable | Sequence[Hashable], intensity: str = "percentile", channel_wise: bool = False,
                       ct_window: Sequence[float] = CT_WINDOW) -> MapTransform:
    """The scaling an ``intensity`` setting names: ``"percentile"`` (:func:`percentile_scalingd`, ``channel_wise``
    for co-registered modalities) or ``"ct"`` (``ct_window`` in HU -> ``[0, 1]``, clipped).

    Raises:
        BadSettingError: another ``intensity`` (one line naming the choices).
    """
    if intensity == "percentile":
        return percentile_scalingd(keys, channel_wise=channel_wise)
    if intensity == "ct":
        return ScaleIntensityRanged(keys, a_min=ct_window[0], a_max=ct_window[1], b_min=0.0, b_max=1.0, clip=True)
    raise BadSettingError(f"--intensity {intensity!r}: expected one of {', '.join(INTENSITIES)} (percentile for MRI, "
                          "X-ray and photos; ct for a fixed HU window)")
