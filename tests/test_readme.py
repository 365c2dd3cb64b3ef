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
    assert scope["ddf_pred"].shape == (2, 2, 64, 64) and scope["views"]["mask"].shape == (2, 1, 64, 64)
    assert scope["net"].backbone.encoders[0][0].conv.weight.grad.abs().sum() > 0


def test_readme_first_screen_has_the_two_commands():
    head = README.read_text().split("## Where COVER lives")[0]
    assert "python -m monai.bundle run --config_file bundles/cover_pretrain/configs/train.json" in head
    assert "bash .ci/run" in head


def test_what_happens_when_names_existing_tests():
    """Every row of "What happens when" is backed by tests that exist (a renamed test must update the table)."""
    table = README.read_text().split("## What happens when")[1]
    rows = [ln for ln in table.splitlines() if ln.startswith("| ") and not ln.startswith("| situation")]
    assert len(rows) >= 10
    tests = Path(__file__).resolve().parent
    for row in rows:
        cited = re.findall(r"`([\w/]+\.py)?((?:::\w+)?)`", row.split(" | ")[-1])
        assert cited, f"row without a test: {row[:60]}"
        current = None
        for path, name in cited:
            current = tests / path if path else current
            assert current is not None and current.is_file(), f"{path}: no such test file ({row[:40]})"
            if name:
                assert f"def {name[2:]}(" in current.read_text(), f"{current.name}{name}: no such test"
