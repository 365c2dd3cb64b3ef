"""The COVER objective: ``L = lambda_vec * L_vec + lambda_con * L_con``."""

from __future__ import annotations

import torch
import torch.nn as nn

from monai_cover.losses.consistency import ConsistencyLoss
from monai_cover.losses.vector import VectorLoss

__all__ = ["CoverLoss"]


class CoverLoss(nn.Module):
    """Weighted sum of :class:`VectorLoss` and :class:`ConsistencyLoss` (paper default 1 : 1).

    ``forward(ddf_pred, feat_a, feat_b, ddf, mask)`` returns a dict with ``loss`` (to backpropagate),
    ``loss_vec`` and ``loss_con`` (detached, for logging). A weight of 0 skips that term's computation.
    """

    def __init__(self, lambda_vec: float = 1.0, lambda_con: float = 1.0) -> None:
        super().__init__()
        self.lambda_vec, self.lambda_con = lambda_vec, lambda_con
        self.vec, self.con = VectorLoss(), ConsistencyLoss()

    def forward(self, ddf_pred, feat_a, feat_b, ddf, mask) -> dict[str, torch.Tensor]:
        zero = ddf_pred.new_zeros(())
        l_vec = self.vec(ddf_pred.float(), ddf.float(), mask) if self.lambda_vec else zero
        l_con = self.con(feat_a.float(), feat_b.float(), ddf, mask) if self.lambda_con else zero
        return {
            "loss": self.lambda_vec * l_vec + self.lambda_con * l_con,
            "loss_vec": l_vec.detach(),
            "loss_con": l_con.detach(),
        }
