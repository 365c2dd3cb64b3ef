"""The one warp used everywhere in monai-cover (view generation, feature warps, pyramid composition).

Convention (same as :class:`monai.networks.blocks.Warp` with ``padding_mode="zeros"``):
``warp(x, ddf)(p) = x(p + ddf(p))``, ``ddf`` in voxels of ``x``'s grid, channel ``i`` = displacement along
array axis ``i``, linear interpolation, zeros outside, ``align_corners=True`` (voxel centres).
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from monai.networks.blocks import Warp

__all__ = ["warp", "upsample_field"]

_WARPS: dict[tuple, Warp] = {}


def _get_warp(device: torch.device, dtype: torch.dtype, ddf_shape: torch.Size) -> Warp:
    # MONAI's Warp caches its reference grid without checking device, dtype or spatial rank (a 3D field of shape
    # (2, H, W) reuses the grid of a 2D (H, W) warp), so keep one instance per device, dtype and field shape.
    key = (str(device), dtype, tuple(ddf_shape))
    if key not in _WARPS:
        if len(_WARPS) > 64:
            _WARPS.clear()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Using PyTorch native grid_sample" is expected on CPU builds
            _WARPS[key] = Warp(mode="bilinear", padding_mode="zeros")
    return _WARPS[key]


def warp(image: torch.Tensor, ddf: torch.Tensor) -> torch.Tensor:
    """Backward-warp ``image`` by ``ddf``.

    Args:
        image: ``(B, C, *S)`` tensor, 2D or 3D spatial.
        ddf: ``(B, d, *S)`` displacement field in voxels; cast to ``image``'s dtype.

    Returns:
        ``(B, C, *S)`` warped image, zero where ``p + ddf(p)`` falls outside the grid.
    """
    ddf = ddf.to(dtype=image.dtype)
    return _get_warp(image.device, image.dtype, ddf.shape)(image, ddf)


def upsample_field(field: torch.Tensor, size: tuple[int, ...] | torch.Size, scale_vectors: bool = True) -> torch.Tensor:
    """Linearly resample a displacement field to a finer grid of ``size``.

    The grids are the ones produced by the U-Net's 2x max-pooling, so voxel centres are related by
    ``fine = 2 * coarse + 0.5`` (``align_corners=False``). With ``scale_vectors`` the vectors are multiplied by
    the per-axis size ratio (2 for a pyramid level), converting them to voxels of the finer grid.

    Args:
        field: ``(B, d, *S_coarse)`` field in voxels of the coarse grid.
        size: target spatial size ``S_fine``.
        scale_vectors: rescale the vector lengths to the new grid.

    Returns:
        ``(B, d, *S_fine)`` field.
    """
    d = field.ndim - 2
    mode = "bilinear" if d == 2 else "trilinear"
    out = F.interpolate(field, size=tuple(size), mode=mode, align_corners=False)
    if scale_vectors:
        ratio = torch.tensor([s / c for s, c in zip(size, field.shape[2:])], dtype=out.dtype, device=out.device)
        out = out * ratio.view(1, d, *([1] * d))
    return out
