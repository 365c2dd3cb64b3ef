"""``benchmarks/bf16_conv3d_repro.py``: the upstream repro's table and exit status agree with its own rows."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import bf16_conv3d_repro  # noqa: E402


def test_rel_error_counts_non_finite_as_infinite():
    ref = torch.ones(3)
    assert bf16_conv3d_repro.rel_error(torch.tensor([1.0, 1.0, 1.1]), ref) == pytest.approx(0.1 / 3**0.5, rel=1e-5)
    assert bf16_conv3d_repro.rel_error(torch.tensor([1.0, float("nan"), 1.0]), ref) == float("inf")


def test_float32_gradients_match_themselves_and_the_table_has_a_row_per_depth(capsys):
    conv = torch.nn.Conv3d(4, 4, 3, padding=1)
    x = torch.randn(1, 4, 2, 3, 3)
    w, g = bf16_conv3d_repro.gradients(conv, x, bf16=False)
    assert w.shape == conv.weight.shape and g.shape == x.shape and w.abs().sum() > 0
    status = bf16_conv3d_repro.main(["--channels", "8", "--depths", "2", "3", "--size", "3"])
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| (")]
    assert [r.split("|")[1].strip() for r in rows] == ["(2, 8, 2, 3, 3)", "(2, 8, 3, 3, 3)"]
    wrong = sum("**yes**" in r for r in rows)
    # whether depth 2 is wrong depends on the CPU and torch build; the summary and the exit status must agree
    assert re.search(rf"^{wrong} of 2 depths wrong$", out, re.M) and status == (1 if wrong else 0)
    assert "Conv3d(8, 8, 3, padding=1)" in out.splitlines()[0]
