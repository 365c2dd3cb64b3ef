"""Vector Pyramid Aggregation (VPA): coarse-to-fine composition of per-level MoV fields."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn

from monai_cover.networks.blocks.mov import MixtureOfVectors, mixture_of_vectors
from monai_cover.networks.blocks.warp import upsample_field, warp

__all__ = ["VectorPyramidAggregation"]


class VectorPyramidAggregation(nn.Module):
    """Predict the displacement field ``ddf`` from two finest-first feature pyramids.

    At each level the key features (``x_a``) are warped by the field accumulated so far, MoV measures the residual
    ``w``, and fields are composed as ``w(p) + phi(p + w(p))``. Reach: ``radius * (2^L - 1)`` voxels at full
    resolution (62 for 5 levels and radius 2).

    Args:
        spatial_dims: 2 or 3.
        feature_channels: backbone channels per level, finest first (e.g. ``(32, 64, 128, 256, 512)``).
        heads: MoV heads per level, coarse to fine (paper: ``(4, 4, 4, 1, 1)``).
        head_dim: channels per head.
        radius: MoV window radius per level.
        vector_fn: similarity-to-vector function passed to every :class:`MixtureOfVectors`.
    """

    def __init__(
        self,
        spatial_dims: int,
        feature_channels: Sequence[int],
        heads: Sequence[int] = (4, 4, 4, 1, 1),
        head_dim: int = 8,
        radius: int = 2,
        vector_fn=mixture_of_vectors,
    ) -> None:
        super().__init__()
        coarse_first = list(feature_channels)[::-1]
        if len(heads) != len(coarse_first):
            raise ValueError(f"VPA: {len(heads)} head counts given for {len(coarse_first)} feature levels.")
        self.levels = nn.ModuleList(
            MixtureOfVectors(spatial_dims, c, j, head_dim, radius, vector_fn) for c, j in zip(coarse_first, heads)
        )

    def forward(self, features_a: Sequence[torch.Tensor], features_b: Sequence[torch.Tensor]) -> torch.Tensor:
        """Finest-first pyramids of ``x_a`` (keys) and ``x_b`` (queries) -> ``(B, d, *S)`` field in full-res voxels.

        ``x_b(p) ~ x_a(p + ddf(p))``, the backward-warp convention of :func:`monai_cover.networks.blocks.warp`.
        """
        fa, fb = list(features_a)[::-1], list(features_b)[::-1]  # coarse first
        phi = None
        for level, (mov, a, b) in enumerate(zip(self.levels, fa, fb)):
            w = mov(b, a, phi)  # keys read at p + phi(p)
            if level + 1 < len(self.levels):  # move both fields to the next finer grid (vectors x2)
                size = fb[level + 1].shape[2:]
                w = upsample_field(w, size)
                phi = None if phi is None else upsample_field(phi, size)
            phi = w if phi is None else warp(phi, w) + w  # compose: w(p) + phi(p + w(p))
        return phi
