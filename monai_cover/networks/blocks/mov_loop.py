"""MoV written as the authors' script computes it: a Python loop over the (2r+1)^d window offsets.

The numerical reference for the vectorised :func:`monai_cover.networks.blocks.mixture_of_vectors` (tests) and the
baseline of ``benchmarks/step.py``. Same signature, so it can be passed to :class:`~monai_cover.networks.CoverNet`
as ``vector_fn``. Memory grows with the number of offsets (autograd keeps every offset's product), so it is not used
for training.
"""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F

__all__ = ["mixture_of_vectors_loop"]


def mixture_of_vectors_loop(query: torch.Tensor, key: torch.Tensor, heads: int, radius: int = 2) -> torch.Tensor:
    """``(B, J*h, *S), (B, J*h, *S) -> (B, d, *S)`` expected offsets, one offset per loop iteration."""
    b, ch = query.shape[:2]
    spatial = query.shape[2:]
    d = len(spatial)
    h = ch // heads
    q = query.reshape(b, heads, h, *spatial)
    kp = F.pad(key, [radius] * (2 * d), value=0.0).reshape(b, heads, h, *[s + 2 * radius for s in spatial])
    inside = F.pad(torch.ones(spatial, device=key.device), [radius] * (2 * d), value=0.0)
    sims, offsets = [], []
    for off in itertools.product(range(-radius, radius + 1), repeat=d):
        window = tuple(slice(radius + o, radius + o + s) for o, s in zip(off, spatial))
        s_o = (q * kp[(Ellipsis,) + window]).sum(2) / math.sqrt(h)  # (B, J, *S)
        s_o = s_o.masked_fill(inside[window] == 0, float("-inf"))  # key outside the map: excluded
        sims.append(s_o)
        offsets.append(off)
    w = torch.softmax(torch.stack(sims, 2).float(), dim=2)  # (B, J, K, *S)
    o = torch.tensor(offsets, dtype=w.dtype, device=w.device)  # (K, d)
    v = (w.unsqueeze(3) * o.view(1, 1, len(offsets), d, *([1] * d))).sum(2)  # (B, J, d, *S)
    return v.mean(1)
