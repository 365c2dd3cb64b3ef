"""Temporal COVER: the known-field objective for pairs of one frame, a self-supervised one across frames."""

from __future__ import annotations

import warnings

import torch
import torch.nn as nn
from monai.losses import BendingEnergyLoss, LocalNormalizedCrossCorrelationLoss

from monai_cover.losses.cover import CoverLoss
from monai_cover.losses.vector import VectorLoss
from monai_cover.networks.blocks.warp import warp
from monai_cover.transforms import functional as Fn

__all__ = ["TemporalCoverLoss", "TEMPORAL"]

#: pair code of a view pair from two frames (``PAIR_KINDS.index("temporal")`` of the sampler)
TEMPORAL = 3


class TemporalCoverLoss(nn.Module):
    """COVER on sequences (``CoverViewSampler(geometry, pairs={"temporal_gap": G})``): pairs from one frame keep
    today's objective, pairs from two frames learn the field without a target.

    For a pair of frames ``t`` and ``t + gap`` the true field is the drawn one composed with the anatomy's motion
    between the frames, which nobody knows. Those pairs are trained by image matching instead (as unsupervised
    registration is): the clean view a warped by the predicted field should look like view b,
    ``L_sim = 1 - mean_p m(p) LNCC(warp(clean_a, ddf_pred), view_b)(p)`` (MONAI's local normalised
    cross-correlation; ``m`` the positions whose source lies in the crop and where view b shows image content, the
    only ones compared), plus ``lambda_smooth`` times MONAI's bending energy of ``ddf_pred`` (0 for any affine
    field, so the drawn affine part is not penalised). Both are 0 for a perfect prediction of an affine motion and
    positive otherwise. Pairs from one frame (gap 0) get
    ``CoverLoss`` with the exact drawn field, as for images.

    Optionally (``lambda_trans > 0``) the transitivity constraint that the drawn field gives: with ``ddf_0`` the
    prediction for view a and view b's frame undeformed (``clean_b``), view b is ``clean_b`` moved by ``ddf``, so
    the prediction for the pair must be ``ddf + ddf_0(p + ddf(p))``; ``L_trans`` is that masked L1 difference
    (voxels, as :class:`~monai_cover.losses.VectorLoss`). It costs a second prediction per two-frame pair (the
    pretraining step appends those pairs to the batch, ``views["ddf_clean"]``) and only constrains the prediction
    relative to itself: any motion estimate, right or wrong, satisfies it as long as the drawn part is added on
    top, while image matching ties the field to the frames' content. ``benchmarks/temporal.py`` ablates the two.

    ``forward(ddf_pred, feat_a, feat_b, ddf, mask, views)``: the first five as :class:`CoverLoss` (``(B, d, *S)``
    fields in voxels, ``(B, F, *S)`` features, ``(B, 1, *S)`` mask), ``views`` the sampler's dict (``pair``,
    ``clean_a``, ``view_b``, ``content_b``; with ``lambda_trans`` also ``ddf_clean`` ``(n, d, *S)``, the predictions
    for ``(view_a, clean_b)`` of the ``n`` two-frame pairs in batch order). Returns ``loss`` and the detached terms
    ``loss_vec``, ``loss_con`` (one-frame pairs), ``loss_sim``, ``loss_smooth`` and, with ``lambda_trans``,
    ``loss_trans`` (two-frame pairs), each 0 when the batch has no pair of its kind. The two groups are averaged
    over their own pairs and weighted by their share of the batch.

    Args:
        lambda_vec, lambda_con: the one-frame pairs' :class:`CoverLoss` weights.
        lambda_sim: weight of the image-matching term.
        lambda_smooth: weight of the bending energy (voxel units).
        kernel_size: LNCC window, voxels per axis.
        lambda_trans: weight of the transitivity term (0: off, no second prediction).
    """

    #: the pretraining step passes the view dict (``views=``) to losses with this flag
    needs_views = True

    def __init__(self, lambda_vec: float = 1.0, lambda_con: float = 1.0, lambda_sim: float = 1.0,
                 lambda_smooth: float = 1.0, kernel_size: int = 9, lambda_trans: float = 0.0) -> None:
        super().__init__()
        self.cover = CoverLoss(lambda_vec, lambda_con)
        self.lambda_sim, self.lambda_smooth, self.kernel_size = lambda_sim, lambda_smooth, kernel_size
        self.lambda_trans = lambda_trans
        self.bending = BendingEnergyLoss()
        self.vector = VectorLoss()

    @property
    def needs_clean_pairs(self) -> bool:
        """Whether the pretraining step must also predict ``(view_a, clean_b)`` for the two-frame pairs."""
        return self.lambda_trans > 0

    def transitivity(self, pred: torch.Tensor, ddf_clean: torch.Tensor, ddf: torch.Tensor,
                     mask: torch.Tensor) -> torch.Tensor:
        """Masked L1 (voxels) between ``pred`` and ``ddf + ddf_clean(p + ddf(p))``, all ``(n, d, *S)``."""
        return self.vector(pred, ddf + warp(ddf_clean, ddf), mask)

    def similarity(self, moved: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """``1 - masked mean LNCC`` of ``(B, 1, *S)`` images (0 when they match up to a local linear intensity
        change, up to 2)."""
        # smooth_nr = smooth_dr: flat windows count as matching (ncc 1), as they do for a perfect field
        lncc = LocalNormalizedCrossCorrelationLoss(spatial_dims=moved.ndim - 2, kernel_size=self.kernel_size,
                                                   reduction="none", smooth_nr=1e-5, smooth_dr=1e-5)
        # outside the valid positions the target stands in for the moved image: windows at the edge of the valid
        # region then compare only valid content, so a perfect field scores exactly 0
        ncc = -lncc(torch.where(valid > 0, moved, target), target)
        return 1.0 - (ncc * valid).sum() / valid.sum().clamp_min(1.0)

    def smoothness(self, pred: torch.Tensor) -> torch.Tensor:
        """MONAI's bending energy of ``(B, d, *S)`` fields in voxels (0 for affine fields)."""
        with warnings.catch_warnings():  # MONAI 1.6 indexes with lists, which torch warns about on every call
            warnings.simplefilter("ignore", UserWarning)
            return self.bending(pred)

    def forward(self, ddf_pred, feat_a, feat_b, ddf, mask, views: dict) -> dict[str, torch.Tensor]:
        moving = (views["pair"] == TEMPORAL).to(ddf_pred.device)
        n, b = int(moving.sum()), moving.numel()
        zero = ddf_pred.new_zeros((), dtype=torch.float32)
        out = {"loss": zero, "loss_vec": zero, "loss_con": zero, "loss_sim": zero, "loss_smooth": zero}
        if self.lambda_trans > 0:
            out["loss_trans"] = zero
        if n < b:
            keep = ~moving
            known = self.cover(ddf_pred[keep], feat_a[keep], feat_b[keep], ddf[keep], mask[keep])
            out.update(loss=known["loss"] * ((b - n) / b), loss_vec=known["loss_vec"], loss_con=known["loss_con"])
        if n:
            pred = ddf_pred[moving].float()
            moved = warp(views["clean_a"][moving].float(), pred)
            valid = Fn.valid_mask(pred.detach()) * views["content_b"][moving]
            sim = self.similarity(moved, views["view_b"][moving].float(), valid)
            smooth = self.smoothness(pred)
            total = self.lambda_sim * sim + self.lambda_smooth * smooth
            out.update(loss_sim=sim.detach(), loss_smooth=smooth.detach())
            if self.lambda_trans > 0:
                if "ddf_clean" not in views or len(views["ddf_clean"]) != n:
                    raise ValueError("TemporalCoverLoss: lambda_trans > 0 needs views['ddf_clean'], the predictions "
                                     f"for (view_a, clean_b) of the {n} two-frame pairs (CoverPretrainStep adds them).")
                trans = self.transitivity(pred, views["ddf_clean"].float(), ddf[moving].float(), mask[moving])
                total = total + self.lambda_trans * trans
                out["loss_trans"] = trans.detach()
            out["loss"] = out["loss"] + total * (n / b)
        return out
