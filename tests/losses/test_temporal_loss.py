"""Temporal COVER loss (issue 17): pairs of two frames are trained by image matching plus bending energy.

Frames of a periodic image rolled by a whole number of voxels move exactly (no edge effects), so the perfect field of
a two-frame pair is known in the test: the drawn field plus ``gap`` times the motion. The loss must be 0 for it and
positive for a field that misses the motion.
"""

from __future__ import annotations

import math

import pytest
import torch

from monai_cover.engines import CoverPretrainStep
from monai_cover.losses import CoverLoss, TemporalCoverLoss
from monai_cover.networks import CoverNet
from monai_cover.networks.blocks import warp
from monai_cover.transforms import CoverViewSampler
from tests.losses.test_losses import TINY
from tests.transforms.test_sampler import CROP, GRID

MOTION = {2: (2, -3), 3: (1, -2, 1)}  # voxels per frame


def _moving_sequence(batch: int, dims: int, frames: int = 3) -> torch.Tensor:
    """``(B, T, *S)``: frame ``t`` is a periodic image moved by ``t * MOTION``: ``frame_t(q) = frame_0(q + t m)``."""
    shape = GRID[dims]
    axes = torch.meshgrid(*[torch.arange(s, dtype=torch.float32) / s for s in shape], indexing="ij")
    gen = torch.Generator().manual_seed(0)
    img = torch.zeros(batch, *shape)
    for _ in range(4):  # a few integer-frequency waves: periodic on the grid
        freq = torch.randint(1, 4, (dims,), generator=gen)
        phase = torch.rand(batch, generator=gen).view(-1, *([1] * dims)) * 2 * math.pi
        img = img + torch.sin(2 * math.pi * sum(f * a for f, a in zip(freq, axes)) + phase)
    m = MOTION[dims]
    return torch.stack([torch.roll(img, [-t * v for v in m], list(range(1, dims + 1))) for t in range(frames)], 1)


def _views(dims: int, share: float, batch: int = 6, seed: int = 4):
    s = CoverViewSampler({"spatial_dims": dims, "crop_size": CROP[dims]},
                         pairs={"temporal_gap": 2, "temporal_share": share}, seed=seed)
    seq = _moving_sequence(batch, dims)
    s.randomize(batch, GRID[dims])
    views = s.generate(seq)
    motion = torch.tensor(MOTION[dims], dtype=torch.float32).view(1, dims, *([1] * dims))
    perfect = views["ddf"] + views["gap"].view(-1, 1, *([1] * dims)).float() * motion
    return views, perfect


def _loss(views, ddf_pred, **kw):
    feats = torch.zeros(ddf_pred.shape[0], 4, *ddf_pred.shape[2:])
    loss = TemporalCoverLoss(lambda_con=0.0, **kw)
    return loss(ddf_pred, feats, feats, views["ddf"], views["mask"], views=views)


@pytest.mark.parametrize("dims", [2, 3])
def test_zero_for_the_true_motion_and_positive_when_the_motion_is_missed(dims):
    views, perfect = _views(dims, share=1.0)
    assert (views["pair"] == 3).all()
    out = _loss(views, perfect)
    assert abs(out["loss_sim"].item()) < 1e-5 and out["loss_smooth"].item() < 1e-6 and abs(out["loss"].item()) < 1e-5
    assert out["loss_vec"].item() == 0.0  # no one-frame pair in this batch
    missed = _loss(views, views["ddf"].clone().requires_grad_())  # the drawn field only
    assert missed["loss_sim"].item() > 0.05
    zero = _loss(views, torch.zeros_like(perfect))
    assert zero["loss_sim"].item() > missed["loss_sim"].item()
    # a wobbly field pays bending energy; the drawn affine one does not
    wobble = perfect + 0.5 * torch.randn_like(perfect)
    assert _loss(views, wobble)["loss_smooth"].item() > 0.1


def test_one_frame_pairs_keep_the_exact_target_and_the_groups_are_weighted_by_share():
    views, perfect = _views(2, share=0.5, batch=8, seed=1)
    kinds = views["pair"]
    n = int((kinds == 3).sum())
    assert 0 < n < 8
    assert _loss(views, perfect)["loss"].item() < 1e-4  # gap-0 items: perfect = ddf exactly
    off = (perfect + 1.0).requires_grad_()  # 1 voxel off on both axes: L_vec 2 on one-frame pairs
    out = _loss(views, off)
    keep = kinds != 3
    vec = CoverLoss(1.0, 0.0)(off[keep], off[keep], off[keep], views["ddf"][keep], views["mask"][keep])["loss_vec"]
    assert out["loss_vec"].item() == pytest.approx(vec.item()) and vec.item() == pytest.approx(2.0, rel=1e-5)
    expected = (8 - n) / 8 * out["loss_vec"] + n / 8 * (out["loss_sim"] + out["loss_smooth"])
    assert out["loss"].item() == pytest.approx(expected.item(), rel=1e-5)
    out["loss"].backward()
    assert off.grad[kinds == 3].abs().sum() > 0 and off.grad[keep].abs().sum() > 0


def test_the_pretraining_step_hands_the_views_to_the_temporal_loss():
    torch.manual_seed(0)
    net = CoverNet(spatial_dims=2, in_channels=1, **TINY)
    step = CoverPretrainStep(None, TemporalCoverLoss())
    views, _ = _views(2, share=0.5)
    before = [p.detach().clone() for p in net.parameters()]
    out = step.update(net, torch.optim.SGD(net.parameters(), lr=0.1), views)
    assert {"loss_vec", "loss_con", "loss_sim", "loss_smooth", "grad_norm"} <= set(out)
    assert out["loss_sim"] > 0 and math.isfinite(out["loss"])
    assert any(not torch.equal(a, b) for a, b in zip(before, net.parameters()))


@pytest.mark.parametrize("dims", [2, 3])
def test_transitivity_is_zero_for_consistent_fields_and_measures_the_missing_motion(dims):
    views, perfect = _views(dims, share=1.0)
    gap = views["gap"].view(-1, *([1] * (dims + 1))).float()
    motion = torch.tensor(MOTION[dims], dtype=torch.float32).view(1, dims, *([1] * dims))
    true_clean = (gap * motion).expand_as(perfect)  # clean_b(q) = view a's frame at q + gap * motion
    out = _loss({**views, "ddf_clean": true_clean}, perfect, lambda_trans=1.0)
    assert out["loss_trans"].item() < 1e-5
    # the limitation the docstring names: a motion estimate that is wrong but consistent is not penalised
    wrong = torch.full_like(perfect, 2.5)
    assert _loss({**views, "ddf_clean": wrong}, views["ddf"] + 2.5, lambda_trans=1.0)["loss_trans"].item() < 1e-5
    # a varying clean-pair field is read where view b's positions come from (p + ddf), not at p
    varying = torch.randn(perfect.shape[0], dims, *([3] * dims))
    varying = torch.nn.functional.interpolate(varying, size=perfect.shape[2:], mode="bilinear" if dims == 2 else
                                              "trilinear", align_corners=True) * 3
    composed = views["ddf"] + warp(varying, views["ddf"])
    assert _loss({**views, "ddf_clean": varying}, composed, lambda_trans=1.0)["loss_trans"].item() < 1e-5
    assert _loss({**views, "ddf_clean": varying}, views["ddf"] + varying, lambda_trans=1.0)["loss_trans"].item() > 0.1
    # a clean-pair prediction that misses the motion costs |gap * motion|_1 per valid voxel
    out = _loss({**views, "ddf_clean": torch.zeros_like(perfect)}, perfect, lambda_trans=1.0)
    per_item = views["mask"].flatten(1).sum(1)
    expected = (per_item * views["gap"].abs().float() * motion.abs().sum()).sum() / per_item.sum()
    assert out["loss_trans"].item() == pytest.approx(expected.item(), rel=1e-4) and expected.item() > 1.0
    assert out["loss"].item() == pytest.approx((out["loss_sim"] + out["loss_smooth"] + out["loss_trans"]).item(),
                                               rel=1e-5)


def test_transitivity_without_the_clean_predictions_says_what_is_missing():
    views, perfect = _views(2, share=1.0)
    with pytest.raises(ValueError, match="ddf_clean"):
        _loss(views, perfect, lambda_trans=1.0)


def test_the_pretraining_step_predicts_the_clean_pairs_for_transitivity():
    torch.manual_seed(0)
    net = CoverNet(spatial_dims=2, in_channels=1, **TINY)
    seen = {}

    class Spy(TemporalCoverLoss):
        def forward(self, ddf_pred, *args, views):
            seen.update(ddf_pred=ddf_pred.detach().clone(), ddf_clean=views["ddf_clean"].detach().clone())
            return super().forward(ddf_pred, *args, views=views)

    views, _ = _views(2, share=0.5, batch=8, seed=1)
    rows = views["pair"] == 3
    assert 0 < int(rows.sum()) < 8
    with torch.no_grad():  # GroupNorm is per sample: the appended pairs do not change the others' predictions
        ddf_full = net(views["view_a"], views["view_b"])[0]
        ddf_clean = net(views["view_a"][rows], views["clean_b"][rows])[0]
    out = CoverPretrainStep(None, Spy(lambda_trans=1.0)).update(net, torch.optim.SGD(net.parameters(), lr=0.1), views)
    torch.testing.assert_close(seen["ddf_pred"], ddf_full, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(seen["ddf_clean"], ddf_clean, atol=1e-5, rtol=1e-4)
    assert out["loss_trans"] > 0 and math.isfinite(out["loss"])
