"""COVER losses (spec section 5): masked L1 vector regression, masked cosine consistency, their weighted sum.

Known values are checked (not just "runs"), the mask must really exclude voxels, an empty mask must give 0 with finite
gradients, and the full model + loss must send gradients into the backbone (the point of pretraining).
"""

from __future__ import annotations

import pytest
import torch

from monai_cover.losses import ConsistencyLoss, CoverLoss, VectorLoss
from monai_cover.networks import CoverNet
from monai_cover.networks.blocks import warp
from monai_cover.transforms import CoverViewSampler
from monai_cover.transforms.functional import valid_mask

TINY = {"channels": (4, 8, 8, 16, 16), "decoder_channels": (16, 8, 8, 8), "heads": (2, 2, 2, 1, 1)}
SHAPES = {2: (9, 8), 3: (6, 5, 7)}


def rand(*shape, seed=0, **kw):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), **kw)


# ---------------------------------------------------------------------------------------------------- VectorLoss
@pytest.mark.parametrize("dims", [2, 3])
def test_vector_loss_zero_at_perfect_prediction(dims):
    target = rand(2, dims, *SHAPES[dims])
    mask = torch.ones(2, 1, *SHAPES[dims])
    assert VectorLoss()(target.clone(), target, mask).item() == 0.0


@pytest.mark.parametrize("dims", [2, 3])
def test_vector_loss_known_value(dims):
    """An error of 1 voxel in each of the ``d`` components is an L1 norm of ``d`` per voxel -> loss ``d``."""
    target = rand(2, dims, *SHAPES[dims])
    mask = torch.ones(2, 1, *SHAPES[dims])
    loss = VectorLoss()(target + torch.tensor([1.0, -1.0, 1.0][:dims]).view(1, dims, *([1] * dims)), target, mask)
    assert loss.item() == pytest.approx(dims, rel=1e-6)
    # half the voxels with error 0.5 per component, half exact -> mean over voxels d * 0.25
    err = torch.zeros_like(target)
    err[0] = 0.5
    assert VectorLoss()(target + err, target, mask).item() == pytest.approx(dims * 0.25, rel=1e-6)


@pytest.mark.parametrize("dims", [2, 3])
def test_vector_loss_ignores_masked_voxels(dims):
    """A huge error under ``mask = 0`` changes nothing; the loss is a mean over *valid* voxels only."""
    target = rand(1, dims, *SHAPES[dims])
    pred = target + 0.5 * rand(1, dims, *SHAPES[dims], seed=1)
    mask = (rand(1, 1, *SHAPES[dims], seed=2) > 0).float()
    base = VectorLoss()(pred, target, mask)
    corrupted = torch.where(mask.bool(), pred, torch.full_like(pred, 1e6))
    assert VectorLoss()(corrupted, target, mask).item() == pytest.approx(base.item(), rel=1e-6)
    expected = ((pred - target).abs().sum(1, keepdim=True) * mask).sum() / mask.sum()
    assert base.item() == pytest.approx(expected.item(), rel=1e-6)


def test_vector_loss_empty_mask():
    pred = rand(2, 2, 5, 5).requires_grad_()
    loss = VectorLoss()(pred, rand(2, 2, 5, 5, seed=1), torch.zeros(2, 1, 5, 5))
    assert loss.item() == 0.0
    loss.backward()
    assert torch.isfinite(pred.grad).all() and pred.grad.abs().sum() == 0


def test_vector_loss_shape_check():
    with pytest.raises(ValueError, match="shape"):
        VectorLoss()(torch.zeros(1, 2, 4, 4), torch.zeros(1, 3, 4, 4), torch.ones(1, 1, 4, 4))


# ----------------------------------------------------------------------------------------------- ConsistencyLoss
@pytest.mark.parametrize("dims", [2, 3])
def test_consistency_zero_for_exactly_warped_features(dims):
    """``f_b = warp(f_a, ddf)`` (integer shift, exact) -> features agree wherever ``mask = 1`` -> loss 0."""
    shape = SHAPES[dims]
    fa = rand(2, 4, *shape)
    ddf = torch.tensor([1.0, -2.0, 1.0][:dims]).view(1, dims, *([1] * dims)).expand(2, dims, *shape)
    fb = warp(fa, ddf)
    mask = valid_mask(ddf)  # p + ddf(p) inside the grid
    assert 0.3 < mask.mean() < 1.0
    assert ConsistencyLoss()(fa, fb, ddf, mask).item() == pytest.approx(0.0, abs=1e-6)
    # without the mask the zero-padded strip (f_b = 0, cos = 0) counts: the mask is what makes it exactly 0
    assert ConsistencyLoss()(fa, fb, ddf, torch.ones_like(mask)).item() > 0.05
    # zero displacement: identical features
    assert ConsistencyLoss()(fa, fa, torch.zeros_like(ddf), torch.ones(2, 1, *shape)).item() == pytest.approx(
        0.0, abs=1e-6)
    # but unrelated features are not consistent
    assert ConsistencyLoss()(fa, rand(2, 4, *shape, seed=9), ddf, mask).item() > 0.5


@pytest.mark.parametrize("dims", [2, 3])
def test_consistency_range_and_known_value(dims):
    """``1 - mean cos``: opposite features give 2, orthogonal ones 1; a half/half mix averages over valid voxels."""
    shape = SHAPES[dims]
    fa = rand(1, 4, *shape)
    zero = torch.zeros(1, dims, *shape)
    ones = torch.ones(1, 1, *shape)
    loss = ConsistencyLoss()
    assert loss(fa, -fa, zero, ones).item() == pytest.approx(2.0, abs=1e-5)
    fa2 = torch.zeros(1, 2, *shape)
    fa2[:, 0] = 1.0
    fb2 = torch.zeros(1, 2, *shape)
    fb2[:, 1] = 3.0
    assert loss(fa2, fb2, zero, ones).item() == pytest.approx(1.0, abs=1e-6)
    half = torch.zeros(1, 1, *shape)
    half[:, :, 0] = 1.0  # first row: opposite features
    half[:, :, 1] = 1.0  # second row: equal features
    fb = fa.clone()
    fb[:, :, 0] = -fa[:, :, 0]
    assert loss(fa, fb, zero, half).item() == pytest.approx(1.0, abs=1e-5)
    for seed in range(3):
        value = loss(rand(2, 3, *shape, seed=seed), rand(2, 3, *shape, seed=seed + 10), zero.expand(2, -1, *shape),
                     ones.expand(2, -1, *shape)).item()
        assert 0.0 <= value <= 2.0


def test_consistency_empty_mask_and_gradients():
    """Empty mask -> 0 with finite gradients; no gradient flows into the ground-truth field."""
    fa = rand(1, 4, 6, 6).requires_grad_()
    fb = rand(1, 4, 6, 6, seed=1).requires_grad_()
    ddf = rand(1, 2, 6, 6, seed=2).requires_grad_()
    loss = ConsistencyLoss()(fa, fb, ddf, torch.zeros(1, 1, 6, 6))
    assert loss.item() == 0.0
    loss.backward()
    assert torch.isfinite(fa.grad).all() and torch.isfinite(fb.grad).all()
    fa.grad = fb.grad = None
    ConsistencyLoss()(fa, fb, ddf, torch.ones(1, 1, 6, 6)).backward()
    assert fa.grad.abs().sum() > 0 and fb.grad.abs().sum() > 0  # both branches learn (no stop-gradient)
    assert ddf.grad is None


# ------------------------------------------------------------------------------------------------------ CoverLoss
def test_cover_loss_weights_combine():
    shape = (8, 7)
    ddf_pred, ddf = rand(2, 2, *shape), rand(2, 2, *shape, seed=1)
    fa, fb = rand(2, 4, *shape, seed=2), rand(2, 4, *shape, seed=3)
    mask = (rand(2, 1, *shape, seed=4) > -0.5).float()
    l_vec = VectorLoss()(ddf_pred, ddf, mask)
    l_con = ConsistencyLoss()(fa, fb, ddf, mask)
    for lv, lc in [(1.0, 1.0), (2.0, 0.5), (0.0, 1.0), (1.0, 0.0)]:
        out = CoverLoss(lv, lc)(ddf_pred, fa, fb, ddf, mask)
        assert out["loss"].item() == pytest.approx(lv * l_vec.item() + lc * l_con.item(), rel=1e-6)
        assert out["loss_vec"].item() == pytest.approx(l_vec.item() if lv else 0.0, rel=1e-6)
        assert out["loss_con"].item() == pytest.approx(l_con.item() if lc else 0.0, rel=1e-6)
        assert not out["loss_vec"].requires_grad and not out["loss_con"].requires_grad
    assert CoverLoss().lambda_vec == 1.0 and CoverLoss().lambda_con == 1.0  # paper default 1 : 1


@pytest.mark.parametrize("dims", [2, 3])
def test_gradients_reach_the_backbone(dims):
    """CoverNet + CoverLoss on sampled views: finite gradients everywhere, non-zero in (almost) every parameter.

    The first encoder convolution is the farthest from the loss; its gradient must be non-zero. The MoV projections
    only get gradients through ``L_vec`` (via VPA), so they are checked too, except where a level is a single voxel
    (3D 16^3 crop -> 1^3 bottleneck: the window holds only offset 0, MoV outputs exactly 0 and has no gradient).
    """
    torch.manual_seed(0)
    size, crop = (40, 32) if dims == 2 else (20, 16)
    sampler = CoverViewSampler({"spatial_dims": dims, "crop_size": crop}).set_random_state(0)
    views = sampler(torch.rand(2, 1, *[size] * dims))
    net = CoverNet(dims, **TINY)
    ddf_pred, fa, fb = net(views["view_a"], views["view_b"])
    out = CoverLoss()(ddf_pred, fa, fb, views["ddf"], views["mask"])
    assert torch.isfinite(out["loss"]) and out["loss_vec"] > 0 and out["loss_con"] > 0
    out["loss"].backward()
    named = dict(net.named_parameters())
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in named.values())
    nonzero = [name for name, p in named.items() if p.grad.abs().sum() > 0]
    assert len(nonzero) / len(named) > 0.9, sorted(set(named) - set(nonzero))
    assert named["backbone.encoders.0.0.conv.weight"].grad.abs().sum() > 0
    level_sizes = [f.shape[2:].numel() for f in net.backbone(views["view_a"])][::-1]  # coarse first, like vpa.levels
    for k, n_vox in enumerate(level_sizes):
        grad = named[f"vpa.levels.{k}.projection.0.weight"].grad
        assert (grad.abs().sum() > 0) == (n_vox > 1), (k, n_vox)
