"""SeVR math on batches of tensors (2D and 3D share every function). No randomness here: parameters come in.

Fields are displacement fields in voxels, ``(B, d, *S)``, channel ``i`` along array axis ``i``; views follow
``x_b = warp(x, ddf)``, i.e. ``x_b(p) = x(p + ddf(p))``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

__all__ = [
    "affine_matrices", "affine_field", "elastic_field", "crop", "valid_mask",
    "adjust_contrast_brightness", "gaussian_blur", "noise_blocks_mask", "intensity_remap",
]


def _rotation(angles: torch.Tensor, d: int) -> torch.Tensor:
    """``(B, n_rot)`` angles in radians -> ``(B, d, d)`` rotation, one plane rotation per axis pair."""
    b = angles.shape[0]
    rot = torch.eye(d, dtype=angles.dtype, device=angles.device).repeat(b, 1, 1)
    for k, (i, j) in enumerate(itertools.combinations(range(d), 2)):
        c, s = torch.cos(angles[:, k]), torch.sin(angles[:, k])
        plane = torch.eye(d, dtype=angles.dtype, device=angles.device).repeat(b, 1, 1)
        plane[:, i, i], plane[:, i, j], plane[:, j, i], plane[:, j, j] = c, -s, s, c
        rot = plane @ rot
    return rot


def affine_matrices(rotate: torch.Tensor, shear: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Linear part ``A = R @ Sh @ diag(scale)`` of the view transform.

    Args:
        rotate: ``(B, d(d-1)/2)`` rotation angles in radians, one per axis pair (0,1), (0,2), (1,2).
        shear: ``(B, d(d-1))`` shear angles in radians, one per off-diagonal entry (row-major).
        scale: ``(B, d)`` per-axis scale factors.

    Returns:
        ``(B, d, d)`` matrices.
    """
    d = scale.shape[1]
    sh = torch.eye(d, dtype=scale.dtype, device=scale.device).repeat(scale.shape[0], 1, 1)
    off = [(i, j) for i in range(d) for j in range(d) if i != j]
    for k, (i, j) in enumerate(off):
        sh[:, i, j] = torch.tan(shear[:, k])
    return _rotation(rotate, d) @ sh @ torch.diag_embed(scale)


def affine_field(matrix: torch.Tensor, translation: torch.Tensor, spatial_shape: Sequence[int]) -> torch.Tensor:
    """Displacement ``ddf(p) = A (p - c) + c + t - p`` of an affine map about the grid centre ``c``.

    Args:
        matrix: ``(B, d, d)`` linear part.
        translation: ``(B, d)`` translation in voxels.
        spatial_shape: grid size ``S``.

    Returns:
        ``(B, d, *S)`` field in voxels.
    """
    d = len(spatial_shape)
    dev, dt = matrix.device, matrix.dtype
    axes = [torch.arange(s, device=dev, dtype=dt) - (s - 1) / 2 for s in spatial_shape]
    grid = torch.stack(torch.meshgrid(*axes, indexing="ij"), 0).flatten(1)  # (d, N), centred coordinates
    eye = torch.eye(d, device=dev, dtype=dt)
    disp = (matrix - eye) @ grid + translation.unsqueeze(-1)  # (B, d, N)
    return disp.view(matrix.shape[0], d, *spatial_shape)


def elastic_field(noise: torch.Tensor, spatial_shape: Sequence[int], magnitude: float) -> torch.Tensor:
    """Smooth random field: coarse control-point noise ``(B, d, *G)`` linearly upsampled to ``S``, times ``magnitude``.

    Returns:
        ``(B, d, *S)`` field in voxels (per-component std about ``magnitude``).
    """
    mode = "bilinear" if noise.shape[1] == 2 else "trilinear"
    return F.interpolate(noise, size=tuple(spatial_shape), mode=mode, align_corners=True) * magnitude


def crop(x: torch.Tensor, starts: torch.Tensor | Sequence[Sequence[int]], size: Sequence[int]) -> torch.Tensor:
    """Crop each batch item at its own start: ``(B, C, *S) -> (B, C, *size)``; ``starts`` is ``(B, d)`` voxels."""
    out = []
    for i, st in enumerate(starts):
        idx = (i, slice(None)) + tuple(slice(int(s), int(s) + int(k)) for s, k in zip(st, size))
        out.append(x[idx])
    return torch.stack(out, 0)


def valid_mask(field: torch.Tensor) -> torch.Tensor:
    """``eps(p) = 1`` where ``p + field(p)`` lies inside the grid of ``field`` (inclusive voxel centres).

    Args:
        field: ``(B, d, *S)`` in voxels.

    Returns:
        ``(B, 1, *S)`` float mask of 0/1.
    """
    d = field.ndim - 2
    inside = torch.ones_like(field[:, :1], dtype=torch.bool)
    for axis, size in enumerate(field.shape[2:]):
        shape = [1] * (d + 2)
        shape[axis + 2] = size
        pos = torch.arange(size, device=field.device, dtype=field.dtype).view(shape) + field[:, axis : axis + 1]
        inside &= (pos >= 0) & (pos <= size - 1)
    return inside.to(field.dtype)


def _per_item(v: torch.Tensor, ndim: int) -> torch.Tensor:
    return v.view(-1, *([1] * (ndim - 1)))


def adjust_contrast_brightness(x: torch.Tensor, contrast: torch.Tensor, brightness: torch.Tensor) -> torch.Tensor:
    """``(x - mean) * contrast + mean + brightness`` per batch item (``contrast``, ``brightness``: ``(B,)``)."""
    mean = x.mean(dim=tuple(range(1, x.ndim)), keepdim=True)
    return (x - mean) * _per_item(contrast, x.ndim) + mean + _per_item(brightness, x.ndim)


def gaussian_blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian blur with a per-item ``sigma`` (``(B,)``, voxels; 0 = unchanged).

    Implemented as one grouped convolution per axis, so the whole batch is blurred in ``d`` calls.
    """
    b, c = x.shape[:2]
    d = x.ndim - 2
    radius = max(1, int(math.ceil(3 * float(sigma.max())))) if len(sigma) else 1
    t = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
    sig = sigma.to(x).clamp_min(1e-3).view(-1, 1)
    kern = torch.exp(-0.5 * (t.view(1, -1) / sig) ** 2)
    kern = kern / kern.sum(1, keepdim=True)
    kern = torch.where(sigma.to(x.device).view(-1, 1) > 0, kern, (t.view(1, -1) == 0).to(x))  # (B, n)
    weight = kern.repeat_interleave(c, 0)  # (B*C, n)
    conv = F.conv2d if d == 2 else F.conv3d
    y = x.reshape(1, b * c, *x.shape[2:])
    for axis in range(d):
        shape = [b * c, 1] + [1] * d
        shape[2 + axis] = t.numel()
        pad = [0] * (2 * d)
        pad[2 * (d - 1 - axis)] = pad[2 * (d - 1 - axis) + 1] = radius
        y = conv(F.pad(y, pad, mode="replicate"), weight.view(shape), groups=b * c)
    return y.view_as(x)


def noise_blocks_mask(starts: torch.Tensor, sizes: torch.Tensor, spatial_shape: Sequence[int]) -> torch.Tensor:
    """Union of axis-aligned blocks per item.

    Args:
        starts: ``(B, n_blocks, d)`` first voxel of each block.
        sizes: ``(B, n_blocks, d)`` block extents in voxels (0 = no block).
        spatial_shape: grid size ``S``.

    Returns:
        ``(B, 1, *S)`` boolean mask.
    """
    d = len(spatial_shape)
    inside = torch.ones((*starts.shape[:2], *spatial_shape), dtype=torch.bool, device=starts.device)
    for axis, size in enumerate(spatial_shape):
        shape = [1, 1] + [1] * d
        shape[2 + axis] = size
        pos = torch.arange(size, device=starts.device).view(shape)
        lo = starts[..., axis].view(*starts.shape[:2], *([1] * d))
        hi = lo + sizes[..., axis].view(*starts.shape[:2], *([1] * d))
        inside &= (pos >= lo) & (pos < hi)
    return inside.any(1, keepdim=True)


def intensity_remap(x: torch.Tensor, knots: torch.Tensor) -> torch.Tensor:
    """Map each item's intensities through its own piecewise-linear curve (synthetic contrast).

    Each item is normalised to ``[0, 1]`` by its own minimum and maximum, mapped through the curve through the points
    ``(k / (K - 1), knots[b, k])``, and scaled back to its original range, so a curve of ``knots = linspace(0, 1, K)``
    changes nothing (up to rounding) and a decreasing one inverts the contrast.

    Args:
        x: ``(B, C, *S)`` images.
        knots: ``(B, K)`` curve values in ``[0, 1]`` at ``K >= 2`` equally spaced normalised intensities.

    Returns:
        ``(B, C, *S)``, the same dtype as ``x``.
    """
    b, k = knots.shape
    dims = tuple(range(1, x.ndim))
    lo, hi = x.amin(dims, keepdim=True), x.amax(dims, keepdim=True)
    span = (hi - lo).clamp_min(torch.finfo(x.dtype).eps)
    t = ((x - lo) / span).clamp(0, 1) * (k - 1)
    idx = t.floor().clamp(max=k - 2).long()
    frac = t - idx
    flat, kn = idx.reshape(b, -1), knots.to(device=x.device, dtype=x.dtype)
    y0 = torch.gather(kn, 1, flat).view_as(x)
    y1 = torch.gather(kn, 1, flat + 1).view_as(x)
    return lo + span * (y0 + frac * (y1 - y0))
