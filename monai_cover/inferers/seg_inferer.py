"""The inferer of a segmentation network: sliding windows in its own dimension, or a 2D network slice by slice."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from monai.inferers import Inferer, SliceInferer, SlidingWindowInferer

__all__ = ["model_inferer", "seg_inferer"]


def seg_inferer(roi_size: Sequence[int], slicewise: bool = False, sw_batch_size: int = 4, overlap: float = 0.25,
                progress: bool = False) -> Inferer:
    """``SlidingWindowInferer`` over ``roi_size`` windows, or with ``slicewise`` MONAI's ``SliceInferer``: a 2D
    network (``roi_size`` of 2 values) run on every slice along a volume's last axis (the axial one after RAS
    orientation, the thick-slice axis of most clinical stacks). Either way a volume in gives a volume out,
    ``(B, C, *S)``, so metrics and inverted predictions are the same as for a 3D network."""
    if slicewise:
        return SliceInferer(spatial_dim=2, roi_size=roi_size, sw_batch_size=sw_batch_size, overlap=overlap,
                            progress=progress)
    return SlidingWindowInferer(roi_size=roi_size, sw_batch_size=sw_batch_size, overlap=overlap, progress=progress)


def model_inferer(settings: Mapping[str, Any], roi_size: Sequence[int] | None = None, sw_batch_size: int = 4,
                  overlap: float = 0.25, progress: bool | None = None) -> Inferer:
    """:func:`seg_inferer` of a cover_seg model of ``settings`` (:func:`monai_cover.weights.model_settings`): its
    windows (``roi_size``: the model's unless given) and its slice-by-slice mode; a progress bar for volumes unless
    ``progress`` says otherwise."""
    return seg_inferer(settings["roi_size"] if roi_size is None else roi_size, settings["slicewise"], sw_batch_size,
                       overlap, settings["spatial_dims"] == 3 if progress is None else progress)
