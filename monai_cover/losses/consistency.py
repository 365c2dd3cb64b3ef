"""L_con: masked cosine consistency of the finest features at corresponding positions."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.nn.modules.loss import _Loss

from monai_cover.networks.blocks.warp import warp

__all__ = ["ConsistencyLoss"]


class ConsistencyLoss(_Loss):
    """``L_con = 1 - sum_p eps(p) cos(f_b(p), warp(f_a, ddf)(p)) / sum_p eps(p)`` (0 for an empty mask).

    Forward args: ``feat_a``, ``feat_b`` ``(B, F, *S)``, ``ddf`` ``(B, d, *S)`` ground truth in voxels (no gradient
    flows into it), ``mask`` ``(B, 1, *S)``. Returns a scalar in ``[0, 2]``.
    """

    def forward(self, feat_a: torch.Tensor, feat_b: torch.Tensor, ddf: torch.Tensor, mask: torch.Tensor):
        aligned = warp(feat_a, ddf.detach())
        cos = F.cosine_similarity(feat_b, aligned, dim=1, eps=1e-6).unsqueeze(1)
        total = mask.sum()
        mean_cos = (cos * mask).sum() / total.clamp_min(1.0)
        return (1.0 - mean_cos) * (total > 0).to(cos.dtype)
