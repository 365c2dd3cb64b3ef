"""Backbone snapshots during pretraining, and a scratch backbone drawn from its own seed (cover_seg backbone_seed)."""

from __future__ import annotations

import json

import torch
import torch.nn as nn
from ignite.engine import Engine

from monai_cover.handlers import BackboneExport
from monai_cover.networks import CoverSegNet, CoverUNet
from monai_cover.weights import load_backbone_state, reseed_backbone

WIDTHS = ([4, 8, 8, 16, 16], [16, 8, 8, 8])


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.backbone = CoverUNet(2, 1, *WIDTHS)


def test_snapshots_keep_the_backbone_of_their_iteration(tmp_path):
    net = _Net()

    def step(engine, batch):  # each iteration changes the weights, so snapshots of different iterations differ
        with torch.no_grad():
            next(net.backbone.parameters()).add_(1.0)

    engine = Engine(step)
    BackboneExport(tmp_path / "models", net, snapshots=[1, 3]).attach(engine)
    engine.run(range(4), max_epochs=1)
    snap = tmp_path / "models" / "snapshots"
    assert sorted(p.name for p in snap.iterdir()) == ["iteration_000001", "iteration_000003"]
    first, _ = load_backbone_state(snap / "iteration_000001" / "model.safetensors")
    final, _ = load_backbone_state(tmp_path / "models" / "model.safetensors")
    key = next(iter(net.backbone.state_dict()))  # the parameter each step changed
    assert torch.allclose(final[key] - first[key], torch.full_like(first[key], 3.0))  # 1 step vs 4 steps
    assert json.loads((snap / "iteration_000003" / "model.json").read_text())["pretrain_iterations"] == 3


def test_reseed_backbone_draws_the_same_backbone_whatever_the_head_seed():
    torch.manual_seed(1)
    a = CoverSegNet(2, 1, 3, *WIDTHS)
    torch.manual_seed(2)
    b = CoverSegNet(2, 1, 3, *WIDTHS)
    state = torch.random.get_rng_state()
    reseed_backbone(a.backbone, 7)
    reseed_backbone(b.backbone, 7)
    assert torch.equal(torch.random.get_rng_state(), state)  # the run's own random stream goes on untouched
    for (k, va), vb in zip(a.backbone.state_dict().items(), b.backbone.state_dict().values()):
        assert torch.equal(va, vb), k
    assert not torch.equal(a.head.weight, b.head.weight)  # the head keeps its own seed
    c = CoverSegNet(2, 1, 3, *WIDTHS)
    reseed_backbone(c.backbone, 8)
    assert not torch.equal(next(c.backbone.parameters()), next(a.backbone.parameters()))
