"""Dense binary-contrast baseline (PixPro-style pixel InfoNCE) for the benchmark suite."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from monai_cover.networks.blocks.warp import warp

__all__ = ["PixelContrastLoss"]


class PixelContrastLoss(nn.Module):
    """InfoNCE between corresponding pixels/voxels of the two views (the "binary contrast" COVER is compared with).

    For ``n`` positions ``p`` drawn from the valid mask (over the whole batch), the positive of ``f_b(p)`` is view
    a's feature at its true correspondence ``p + ddf(p)`` (the same :func:`warp` as :class:`ConsistencyLoss`); the
    other ``n - 1`` drawn positions' view-a features are its negatives. Features are L2-normalised, logits are
    cosine / ``temperature``, and the loss is symmetric (b->a and a->b), as in PixPro's PixContrast. The
    correspondences are exact (the views' displacement is known), so no distance threshold is needed. There is no
    projection head: the same finest backbone features as L_con are trained, which keeps backbone, views and
    budget identical across methods.

    ``forward(ddf_pred, feat_a, feat_b, ddf, mask)`` (``ddf_pred`` unused; same signature as :class:`CoverLoss`)
    returns ``{"loss", "loss_nce"}``; ``loss`` is 0 when fewer than 2 valid positions exist.

    Args:
        temperature: softmax temperature (PixPro: 0.3).
        num_samples: positions drawn per step; the logits matrix is ``num_samples^2``, so memory stays bounded
            whatever the image size.
    """

    def __init__(self, temperature: float = 0.3, num_samples: int = 1024) -> None:
        super().__init__()
        if temperature <= 0 or num_samples < 2:
            raise ValueError(f"temperature must be > 0 and num_samples >= 2, got {temperature}, {num_samples}")
        self.temperature, self.num_samples = temperature, num_samples

    def forward(self, ddf_pred, feat_a, feat_b, ddf, mask) -> dict[str, torch.Tensor]:
        aligned = warp(feat_a.float(), ddf.detach().float())  # aligned[p] = f_a(p + ddf(p)), the positive of f_b(p)
        channels = feat_b.shape[1]
        za = aligned.movedim(1, -1).reshape(-1, channels)
        zb = feat_b.float().movedim(1, -1).reshape(-1, channels)
        valid = torch.nonzero(mask.reshape(-1) > 0.5).squeeze(1)
        if valid.numel() < 2:
            zero = (feat_b.sum() * 0.0).float()
            return {"loss": zero, "loss_nce": zero.detach()}
        # torch.randint/randperm follow torch's global RNG, so a seeded run draws the same positions
        pick = valid[torch.randperm(valid.numel(), device=valid.device)[: self.num_samples]]
        za, zb = F.normalize(za[pick], dim=1), F.normalize(zb[pick], dim=1)
        logits = zb @ za.t() / self.temperature
        target = torch.arange(logits.shape[0], device=logits.device)
        loss = 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target))
        return {"loss": loss, "loss_nce": loss.detach()}
