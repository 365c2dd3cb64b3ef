"""Patch sizes chosen from the data (``"auto"``): what a network of a given depth should see of a set of volumes.

A thick-slice stack (e.g. 96x96x12 voxels of 1x1x8 mm) and an isotropic brain crop (35x50x36) need different
per-axis sizes; fixed cubic defaults (64³) pad a 12-slice stack to 64 slices, mostly padding. ``auto`` measures
the median grid of the training volumes (after the bundles' RAS orientation and optional resampling to ``pixdim``)
and fits it to the network: every axis a multiple of the backbone's total stride (so padding never exceeds one
stride), capped at a voxel budget by shrinking the longest axis first. The chosen size is logged once.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from monai.transforms import EnsureChannelFirstd

from monai_cover.config import fit_patch_size
from monai_cover.errors import BadInputError, BadSettingError
from monai_cover.transforms.compose import CheckedCompose
from monai_cover.transforms.geometry import load_size_for
from monai_cover.transforms.io import SafeLoadImaged, to_ras

__all__ = ["AUTO", "CROP_SIZES", "ROI_SIZES", "auto_roi_size", "auto_view_sizes", "fit_to_network", "median_grid"]

logger = logging.getLogger(__name__)

#: the setting value that asks for sizes from the data
AUTO = "auto"
#: default voxel budgets: the fixed defaults' sizes (seg 64³ / 256², pretraining crops 48³)
SEG_MAX_VOXELS = {2: 256 * 256, 3: 64**3}
VIEW_MAX_VOXELS = {2: 128 * 128, 3: 48**3}
#: per network dimension: the pretraining crop (``--crop_size`` null) and the segmentation patch (``--roi_size`` null)
CROP_SIZES = {2: 128, 3: 48}
ROI_SIZES = {2: [256, 256], 3: [64, 64, 64]}


def median_grid(items: Sequence[Any], pixdim: Sequence[float] | None = None, key: str = "image",
                sample: int = 16) -> list[int]:
    """Median shape, voxels per axis in RAS order (at ``pixdim`` mm when given), of up to ``sample`` evenly spaced
    ``items`` (dicts with ``key``, or paths). Unreadable files are passed over here (the run's own checks report
    them); raises :class:`BadInputError` if none can be read."""
    picks = np.unique(np.linspace(0, len(items) - 1, num=min(sample, len(items))).round().astype(int))
    load = CheckedCompose([SafeLoadImaged(key, image_only=True), EnsureChannelFirstd(key), to_ras(key)])
    shapes = []
    for i in picks:
        item = items[i] if isinstance(items[i], Mapping) else {key: items[i]}
        try:
            img = load({key: item[key]})[key]
        except BadInputError:
            continue
        shape = np.asarray(img.shape[1:], dtype=float)
        if pixdim is not None:  # Spacingd's output grid, without resampling the volume here
            spacing = np.asarray(img.pixdim, dtype=float)[: len(shape)]
            shape = np.maximum(1.0, np.round(shape * spacing / np.asarray(pixdim, dtype=float)))
        shapes.append(shape)
    if not shapes:
        raise BadInputError(f"{len(items)} images: none readable for the 'auto' size (check the data folder)")
    return [int(v) for v in np.median(np.stack(shapes), axis=0).round()]


def fit_to_network(grid: Sequence[int], num_levels: int, max_voxels: int, round_up: bool = True) -> list[int]:
    """Sizes for a network whose backbone halves every axis ``num_levels - 1`` times: each axis of ``grid`` rounded
    up (``round_up``, padding less than one stride) or down (cropping less than one stride) to a multiple of the
    stride, at least one stride; then, while the product exceeds ``max_voxels``, the longest axis loses a stride."""
    stride = 2 ** (num_levels - 1)
    step = math.ceil if round_up else math.floor
    size = [max(stride, stride * step(g / stride)) for g in grid]
    while math.prod(size) > max_voxels and max(size) > stride:
        size[size.index(max(size))] -= stride
    return size


def _log(name: str, size: list[int], grid: list[int], how: str, num_levels: int, max_voxels: int) -> None:
    logger.info(f"--{name} auto: {size} from the median grid {grid} of the training images (each axis {how} to a "
                f"multiple of {2 ** (num_levels - 1)}, at most {max_voxels} voxels)")


def auto_roi_size(roi_size: Any, items: Sequence[Any], net_dims: int, num_levels: int, slicewise: bool = False,
                  image_size: Sequence[int] | None = None, pixdim: Sequence[float] | None = None,
                  max_voxels: int | None = None) -> Any:
    """``roi_size`` as given, :data:`ROI_SIZES` of ``net_dims`` for ``None``
    (:func:`~monai_cover.config.fit_patch_size`: one value per axis, each raised to one
    network stride if smaller, logged), or for ``"auto"`` the segmentation patch/window that covers the median
    training image (``net_dims`` values; with ``slicewise`` the in-plane axes of the volumes), each axis rounded up
    to the network stride, capped at ``max_voxels`` (default 64³ in 3D, 256² in 2D). 2D images resized to
    ``image_size`` get that size, rounded the same way."""
    if roi_size is None:
        roi_size = ROI_SIZES[net_dims]
    if roi_size != AUTO:
        return fit_patch_size("roi_size", roi_size, net_dims, num_levels)
    max_voxels = max_voxels or SEG_MAX_VOXELS[net_dims]
    if net_dims == 2 and not slicewise and image_size is not None:
        grid = [int(s) for s in image_size]
    else:
        grid = median_grid(items, pixdim)[:net_dims]
    size = fit_to_network(grid, num_levels, max_voxels)
    _log("roi_size", size, grid, "rounded up", num_levels, max_voxels)
    return size


def auto_view_sizes(crop_size: Any, load_size: Any, items: Sequence[Any], spatial_dims: int, num_levels: int,
                    pixdim: Sequence[float] | None = None, slicewise: bool = False, max_voxels: int | None = None,
                    factor: float = 1.5) -> tuple[Any, Any]:
    """``(crop_size, load_size)`` for pretraining. ``crop_size`` ``None``: :data:`CROP_SIZES` of the network's
    dimension (2 with ``slicewise``). A given ``crop_size`` is kept (as
    :func:`~monai_cover.config.fit_patch_size` fits it); ``load_size`` ``None`` becomes
    ``factor`` times the crop per axis (room for shifted and rotated views). For ``crop_size`` ``"auto"`` (volumes
    only; with ``slicewise`` their in-plane axes): the crop is the median training grid rounded *down* to the
    network stride (views cut from real content, not padding; at least one stride), capped at ``max_voxels``
    (default 48³, or 128² slice by slice), and the grid views are cut from is ``factor`` times it per axis but no
    larger than the data (so a 12-slice stack is not padded to 24)."""
    if crop_size is None:
        crop_size = CROP_SIZES[2 if slicewise else spatial_dims]
    if crop_size == AUTO:
        if spatial_dims != 3:
            raise BadSettingError("--crop_size auto: sizes from the data are for volumes; 2D images are resized to "
                                  "--load_size, so give --crop_size (default 128)")
        grid = median_grid(items, pixdim)[: 2 if slicewise else 3]
        max_voxels = max_voxels or VIEW_MAX_VOXELS[len(grid)]
        crop_size = fit_to_network(grid, num_levels, max_voxels, round_up=False)
        _log("crop_size", crop_size, grid, "rounded down", num_levels, max_voxels)
        if load_size is None:
            load_size = [max(c, min(round(c * factor), g)) for c, g in zip(crop_size, grid)]
    else:
        crop_size = fit_patch_size("crop_size", crop_size, 2 if slicewise else spatial_dims, num_levels)
    return crop_size, load_size_for(crop_size, factor) if load_size is None else load_size
