"""L_vec: masked L1 regression of the displacement field."""

from __future__ import annotations

import torch
from torch.nn.modules.loss import _Loss

__all__ = ["VectorLoss"]


class VectorLoss(_Loss):
    """``L_vec = sum_p eps(p) |ddf(p) - ddf_pred(p)|_1 / sum_p eps(p)`` over the batch (0 for an empty mask).

    Forward args: ``pred`` and ``target`` ``(B, d, *S)`` in voxels, ``mask`` ``(B, 1, *S)``. Returns a scalar in
    voxels (sum of absolute component errors per valid voxel).
    """

    def forward(self, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if pred.shape != target.shape:
            raise ValueError(f"VectorLoss: prediction shape {tuple(pred.shape)} != target {tuple(target.shape)}.")
        err = (pred - target.to(pred.dtype)).abs().sum(1, keepdim=True) * mask
        return err.sum() / mask.sum().clamp_min(1.0)
