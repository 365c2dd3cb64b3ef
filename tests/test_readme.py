"""The README's Python quick start runs as written and produces a finite loss with gradients."""

from __future__ import annotations

import re
from pathlib import Path

import torch

README = Path(__file__).resolve().parents[1] / "README.md"


def test_quick_start_runs():
    code = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)[0]
    scope: dict = {}
    exec(compile(code, str(README), "exec"), scope)  # noqa: S102 - our own README
    assert torch.isfinite(scope["losses"]["loss"])
    assert scope["psi"].shape == (2, 2, 64, 64) and scope["views"]["mask"].shape == (2, 1, 64, 64)
    assert scope["net"].backbone.encoders[0][0].conv.weight.grad.abs().sum() > 0


def test_readme_first_screen_has_the_two_commands():
    head = README.read_text().split("## Where COVER lives")[0]
    assert "python -m monai.bundle run --config_file bundles/cover_pretrain/configs/train.json" in head
    assert "bash .ci/run" in head
