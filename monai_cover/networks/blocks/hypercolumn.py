"""Hypercolumn features: several pyramid levels on one grid, each unit-norm, concatenated."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

__all__ = ["hypercolumn"]


def hypercolumn(levels: Sequence[torch.Tensor], size: Sequence[int], use_levels: Sequence[int] | None = None
                ) -> torch.Tensor:
    """The chosen levels resampled (linear) to ``size``, each L2-normalised over channels, concatenated.

    Args:
        levels: backbone outputs, finest first, ``(B, C_l, *S_l)`` each.
        size: output grid ``S``.
        use_levels: indices into ``levels`` (default: all).

    Returns:
        ``(B, sum C_l, *S)`` divided by ``sqrt(number of levels)``: unit vectors whose dot product is the mean of
        the per-level cosine similarities, so every level weighs the same whatever its width.
    """
    chosen = [levels[i] for i in (range(len(levels)) if use_levels is None else use_levels)]
    mode = "bilinear" if len(size) == 2 else "trilinear"
    out = [F.normalize(F.interpolate(f.float(), size=tuple(size), mode=mode, align_corners=False), dim=1)
           for f in chosen]
    return torch.cat(out, 1) / math.sqrt(len(out))
