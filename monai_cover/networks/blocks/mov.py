"""Mixture of Vectors (MoV): turns windowed feature similarities into an expected displacement vector."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn as nn

from monai_cover.networks.blocks.local_correlation import local_correlation, window_offsets
from monai_cover.networks.blocks.softmax_expectation import softmax_expectation
from monai_cover.networks.blocks.warp import warp

__all__ = ["mixture_of_vectors", "MixtureOfVectors", "window_bias"]

_BIAS_CACHE: dict[tuple, torch.Tensor] = {}


def window_bias(spatial_shape: tuple[int, ...], radius: int, device, dtype=torch.float32) -> torch.Tensor:
    """``(1, K, *S)`` additive mask: 0 where ``p + o`` is inside the map, ``-inf`` where the key is outside.

    Offset 0 is always inside, so no softmax row is ever all ``-inf``.
    """
    key = (tuple(spatial_shape), radius, str(device), dtype)
    if key not in _BIAS_CACHE:
        d = len(spatial_shape)
        offs = window_offsets(radius, d, device=device, dtype=torch.long)  # (K, d)
        inside = torch.ones((offs.shape[0], *spatial_shape), dtype=torch.bool, device=device)
        for axis, size in enumerate(spatial_shape):
            pos = torch.arange(size, device=device).view(*([1] * (axis + 1)), size, *([1] * (d - axis - 1)))
            tgt = pos + offs[:, axis].view(-1, *([1] * d))
            inside &= (tgt >= 0) & (tgt < size)
        bias = torch.zeros(inside.shape, device=device, dtype=dtype).masked_fill(~inside, float("-inf"))
        if len(_BIAS_CACHE) > 64:
            _BIAS_CACHE.clear()
        _BIAS_CACHE[key] = bias.unsqueeze(0)
    return _BIAS_CACHE[key]


_OFFSETS_CACHE: dict[tuple, torch.Tensor] = {}


def _offsets(radius: int, spatial_dims: int, device) -> torch.Tensor:
    """:func:`window_offsets` as float, built once per radius, rank and device: every MoV level of every step needs
    them, and building them is a Python loop plus, on a GPU, a synchronous host-to-device copy."""
    key = (radius, spatial_dims, str(device))
    if key not in _OFFSETS_CACHE:
        _OFFSETS_CACHE[key] = window_offsets(radius, spatial_dims, device=device)
    return _OFFSETS_CACHE[key]


def mixture_of_vectors(query: torch.Tensor, key: torch.Tensor, heads: int, radius: int = 2) -> torch.Tensor:
    """Expected displacement from query to key features, averaged over heads (vectorised over offsets).

    For every position ``p`` and head ``j``: ``w_j(p, o) = softmax_o(<q_j(p), k_j(p + o)> / sqrt(h))`` over the
    window ``o in {-r..r}^d`` (keys outside the map excluded), ``v(p) = mean_j sum_o w_j(p, o) o``.

    Args:
        query: ``(B, J*h, *S)`` projected features of the query view (``x_b``).
        key: ``(B, J*h, *S)`` projected features of the key view (``x_a``, already warped by the coarse field).
        heads: number of heads ``J``.
        radius: window radius ``r`` ("amp"), in voxels of this level.

    Returns:
        ``(B, d, *S)`` displacement in voxels of this level, each component in ``[-r, r]``.
    """
    b, ch = query.shape[:2]
    spatial = tuple(query.shape[2:])
    d = len(spatial)
    if ch % heads:
        raise ValueError(f"mixture_of_vectors: {ch} channels cannot be split into {heads} heads.")
    h = ch // heads
    q = query.reshape(b * heads, h, *spatial)
    k = key.reshape(b * heads, h, *spatial)
    # scale the h-channel queries rather than the K-channel similarities (K = 125 in 3D): same product, fewer ops
    sim = local_correlation(q * (1.0 / math.sqrt(h)), k, radius).float()  # (B*J, K, *S)
    # in place: the op returns a fresh tensor and its backward does not read it, so no K-channel copy is made
    sim.add_(window_bias(spatial, radius, sim.device))
    # the rank from sim, not d: torch.compile(dynamic=True) resumes after the op's graph break with ints as symbols,
    # which itertools cannot take, while a tensor's ndim stays a constant
    v = softmax_expectation(sim, _offsets(radius, sim.ndim - 2, sim.device))  # (B*J, d, *S)
    return v.view(b, heads, d, *spatial).mean(1)


class MixtureOfVectors(nn.Module):
    """One pyramid level of MoV: a siamese projection ``P_l`` then :func:`mixture_of_vectors`.

    When the key features come with a field (every level below the coarsest, see
    :class:`~monai_cover.networks.blocks.VectorPyramidAggregation`), the key map is warped *after* the 1x1
    convolution and before its bias and the GroupNorm. Warping is linear in the channels, so this equals projecting
    the warped backbone features, as the reference does, up to float rounding, while the warp and its backward
    touch ``heads * head_dim`` channels (8-32) instead of the backbone's (32-512): the warp was the largest part of
    the 3D MoV+VPA time on CPU (``benchmarks/step.py``). ``warp_before_projection = True`` restores the reference's
    order (the benchmark's baseline).

    Args:
        spatial_dims: 2 or 3.
        in_channels: channels of this level's backbone features.
        heads: number of heads ``J_l``.
        head_dim: channels per head ``h`` (8 in the paper).
        radius: window radius ("amp"); output bounded in ``[-radius, radius]``.
        vector_fn: the similarity-to-vector function, swappable for reference implementations in tests.
        warp_before_projection: warp the backbone features, then project (the reference's order, slower).
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        heads: int,
        head_dim: int = 8,
        radius: int = 2,
        vector_fn: Callable[..., torch.Tensor] = mixture_of_vectors,
        warp_before_projection: bool = False,
    ) -> None:
        super().__init__()
        conv = nn.Conv2d if spatial_dims == 2 else nn.Conv3d
        self.heads, self.radius, self.vector_fn = heads, radius, vector_fn
        self.warp_before_projection = warp_before_projection
        self.projection = nn.Sequential(conv(in_channels, heads * head_dim, 1), nn.GroupNorm(1, heads * head_dim))

    def forward(
        self, query_features: torch.Tensor, key_features: torch.Tensor, key_field: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``(B, C, *S), (B, C, *S) -> (B, d, *S)`` displacement in voxels of this level.

        ``key_field``: optional ``(B, d, *S)`` field (voxels of this level); the keys are then read at
        ``p + key_field(p)`` (:func:`~monai_cover.networks.blocks.warp`).
        """
        if key_field is None:
            q, k = self.projection(torch.cat([query_features, key_features], 0)).chunk(2, 0)
        elif self.warp_before_projection or not self._splittable():
            q, k = self.projection(torch.cat([query_features, warp(key_features, key_field)], 0)).chunk(2, 0)
        else:
            conv, norm = self.projection
            # GroupNorm normalises each item on its own, so the two views can go through it separately
            z_q, z_k = conv._conv_forward(torch.cat([query_features, key_features], 0), conv.weight, None).chunk(2, 0)
            # cast as the convolution itself casts it under autocast
            bias = conv.bias.to(z_q.dtype).view(1, -1, *([1] * (z_q.ndim - 2)))
            q, k = norm(z_q + bias), norm(warp(z_k, key_field) + bias)
        return self.vector_fn(q, k, self.heads, self.radius)

    def _splittable(self) -> bool:
        """Whether the projection is the (1x1 convolution with bias, GroupNorm) built here (tests may replace it)."""
        p = self.projection
        return (isinstance(p, nn.Sequential) and len(p) == 2 and isinstance(p[0], (nn.Conv2d, nn.Conv3d))
                and p[0].bias is not None and isinstance(p[1], nn.GroupNorm))
