"""The intensity scaling of MRI, X-ray, photo and sequence inputs, one definition for pretraining, fine-tuning,
inference and propagation (a network sees the intensities it was trained on): the 0.5th-99.5th percentiles of each
image mapped to ``[0, 1]``, clipped. CT uses a fixed HU window instead (``intensity "ct"``)."""

from __future__ import annotations

from collections.abc import Hashable, Sequence

from monai.transforms import ScaleIntensityRangePercentiles, ScaleIntensityRangePercentilesd

__all__ = ["PERCENTILES", "percentile_scaling", "percentile_scalingd"]

#: the lower and upper percentile mapped to 0 and 1
PERCENTILES = (0.5, 99.5)


def percentile_scaling(channel_wise: bool = False) -> ScaleIntensityRangePercentiles:
    """Array transform ``(C, *S) -> (C, *S)`` in ``[0, 1]``; ``channel_wise``: each channel by its own percentiles
    (co-registered modalities), else all channels together (colour, a sequence's frames)."""
    return ScaleIntensityRangePercentiles(*PERCENTILES, b_min=0.0, b_max=1.0, clip=True, channel_wise=channel_wise)


def percentile_scalingd(keys: Hashable | Sequence[Hashable], channel_wise: bool = False
                        ) -> ScaleIntensityRangePercentilesd:
    """Dictionary version of :func:`percentile_scaling`."""
    return ScaleIntensityRangePercentilesd(keys, *PERCENTILES, b_min=0.0, b_max=1.0, clip=True,
                                           channel_wise=channel_wise)
