"""The pretraining step's fast-path options change speed and memory, not the computation: one step with each option
gives the default's loss and gradients (float tolerance; bfloat16 within its precision)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from monai_cover.engines import CoverPretrainStep
from monai_cover.networks import CoverNet
from monai_cover.transforms import CoverViewSampler, ViewGeometry

TINY = {"channels": (4, 8, 8, 16, 16), "decoder_channels": (16, 8, 8, 8)}


def views(dims: int, size: int) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    coarse = torch.randn(2, 1, *([4] * dims), generator=gen)
    images = F.interpolate(coarse, size=(size * 3 // 2,) * dims, mode="bilinear" if dims == 2 else "trilinear")
    sampler = CoverViewSampler(ViewGeometry(dims, size))
    sampler.set_random_state(0)
    return sampler(images)


def one_step(dims: int, v: dict, net_options: dict | None = None, **step_options) -> tuple[float, list[torch.Tensor]]:
    torch.manual_seed(0)
    net = CoverNet(dims, 1, **TINY, **(net_options or {}))
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    out = CoverPretrainStep(sampler=None, **step_options).update(net, opt, v)
    return out["loss"], [p.grad.clone() for p in net.parameters()]


@pytest.mark.parametrize("dims,size", [(2, 32), (3, 16)])
@pytest.mark.parametrize("option", [
    {"net": {"checkpointing": True}}, {"net": {"separate_views": True}}, {"step": {"channels_last": True}},
])
def test_fast_path_matches_the_default_step(dims, size, option):
    v = views(dims, size)
    loss, grads = one_step(dims, v)
    loss_o, grads_o = one_step(dims, v, option.get("net"), **option.get("step", {}))
    assert loss_o == pytest.approx(loss, rel=1e-5)
    for g, g_o in zip(grads, grads_o):
        torch.testing.assert_close(g_o, g, rtol=1e-3, atol=1e-5 * float(g.abs().max()) + 1e-9)


def test_bf16_autocast_on_cpu_is_close_to_float32():
    v = views(2, 32)
    loss, grads = one_step(2, v)
    loss_bf, grads_bf = one_step(2, v, bf16=True)
    assert loss_bf == pytest.approx(loss, rel=0.05) and loss_bf != loss  # it did run in bfloat16
    flat, flat_bf = torch.cat([g.flatten() for g in grads]), torch.cat([g.flatten() for g in grads_bf])
    assert F.cosine_similarity(flat, flat_bf, dim=0) > 0.95


def test_compiled_step_matches_eager():
    v = views(2, 32)
    loss, grads = one_step(2, v)
    loss_c, grads_c = one_step(2, v, compile=True)
    assert loss_c == pytest.approx(loss, rel=1e-4)
    for g, g_c in zip(grads, grads_c):
        torch.testing.assert_close(g_c, g, rtol=1e-3, atol=1e-4 * float(g.abs().max()) + 1e-9)


def test_checkpointing_needs_a_backbone_with_the_switch():
    class Plain(torch.nn.Module):
        out_channels = [8, 8, 8, 16, 16]

    with pytest.raises(ValueError, match="checkpointing needs a backbone"):
        CoverNet(2, 1, backbone=Plain(), checkpointing=True)


def test_non_finite_steps_are_skipped_and_repeated_ones_stop_the_run(caplog):
    """A NaN loss (here from a NaN view) leaves weights and optimizer state as they were; a finite step resets
    the count; ``max_skipped`` in a row end the run with one line."""
    from monai_cover.errors import TrainingDivergedError

    v = views(2, 32)
    bad = dict(v, view_a=torch.full_like(v["view_a"], float("nan")))
    torch.manual_seed(0)
    net = CoverNet(2, 1, **TINY)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    step = CoverPretrainStep(sampler=None, max_skipped=3)
    before = [p.detach().clone() for p in net.parameters()]
    step.update(net, opt, bad)
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters())) and not opt.state
    assert "step skipped, weights unchanged (1 in a row)" in caplog.text
    step.update(net, opt, bad)
    out = step.update(net, opt, v)  # finite: trains, and the count starts again
    assert step.skipped_in_a_row == 0 and all(torch.isfinite(p).all() for p in net.parameters())
    assert not all(torch.equal(a, b) for a, b in zip(before, net.parameters())) and out["loss"] == out["loss"]
    step.update(net, opt, bad)
    step.update(net, opt, bad)
    with pytest.raises(TrainingDivergedError, match=r"^3 steps in a row had a non-finite loss or gradient"):
        step.update(net, opt, bad)


def test_bf16_3d_step_at_a_depth_2_bottleneck_is_close_to_float32():
    """32³ crops reach the bottleneck at 2³, where PyTorch's CPU bfloat16 weight gradient of a 3x3x3 convolution was
    NaN/inf/1e30+ on an AVX512-BF16 CPU; with the step's guard every gradient stays close to float32's."""
    v = views(3, 32)
    loss, grads = one_step(3, v)
    loss_bf, grads_bf = one_step(3, v, bf16=True)
    assert loss_bf == pytest.approx(loss, rel=0.05) and loss_bf != loss
    assert all(torch.isfinite(g).all() for g in grads_bf)
    flat, flat_bf = torch.cat([g.flatten() for g in grads]), torch.cat([g.flatten() for g in grads_bf])
    assert F.cosine_similarity(flat, flat_bf, dim=0) > 0.95
    names = [n for n, _ in CoverNet(3, 1, **TINY).named_parameters()]
    bottleneck = [i for i, n in enumerate(names) if n.startswith("backbone.encoders.4.") and n.endswith("conv.weight")]
    assert len(bottleneck) == 2
    for i in bottleneck:  # the two 3x3x3 convolutions at 2³
        assert float((grads_bf[i] - grads[i]).norm() / grads[i].norm()) < 0.1


def test_depth_2_convolutions_run_in_float32_under_cpu_bf16_only():
    from monai_cover.networks.blocks.bf16_conv3d import avoid_bf16_depth2_conv3d

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv3d(4, 4, 3, padding=1), torch.nn.Conv2d(4, 4, 3))
    state = {k: v.clone() for k, v in net.state_dict().items()}
    assert avoid_bf16_depth2_conv3d(net) == 1
    assert all(torch.equal(v, state[k]) for k, v in net.state_dict().items())  # same keys, same values
    conv = net[0]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert conv(torch.randn(1, 4, 2, 5, 5)).dtype == torch.float32  # depth 2: float32
        assert conv(torch.randn(1, 4, 3, 5, 5)).dtype == torch.bfloat16  # other depths: bfloat16 as before
    x = torch.randn(1, 4, 2, 5, 5)
    assert torch.equal(conv(x), torch.nn.functional.conv3d(x, conv.weight, conv.bias, padding=1))  # no autocast
