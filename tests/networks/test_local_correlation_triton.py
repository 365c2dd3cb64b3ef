"""The Triton kernel of ``local_correlation`` against the PyTorch op, on CPU through Triton's interpreter.

CI has no GPU, so the kernel runs under ``TRITON_INTERPRET=1`` in a subprocess (Triton reads the setting when the
kernels are defined, at import). On CUDA the op verifies the kernel once per device before using it; on a device
where it cannot run, that check falls back to the PyTorch op with one warning (tested here on CPU).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import pytest
import torch

from monai_cover.networks.blocks.local_correlation import triton_verified
from tests.bundles.conftest import REPO

pytest.importorskip("triton")

CHECK = r"""
import json, torch
from monai_cover.networks.blocks.local_correlation import local_correlation, triton_verified
from monai_cover.networks.blocks.local_correlation_triton import triton_local_correlation
out = {"verified_on_cpu": triton_verified(torch.device("cpu")), "cases": []}
gen = torch.Generator().manual_seed(0)
for shape, r in [((2, 3, 5, 6), 1), ((1, 3, 5, 6), 2), ((1, 2, 4, 5, 3), 1), ((1, 2, 3, 4, 3), 2), ((1, 8, 2, 9), 2)]:
    q, k = (torch.randn(shape, generator=gen, dtype=torch.float64).requires_grad_() for _ in range(2))
    g = torch.randn(shape[0], (2 * r + 1) ** (len(shape) - 2), *shape[2:], generator=gen, dtype=torch.float64)
    got, ref = ([s, *torch.autograd.grad(s, (q, k), g)] for s in (triton_local_correlation(q, k, r),
                                                                  local_correlation(q, k, r)))
    out["cases"].append({"shape": shape, "radius": r, "diff": [float((a - b).abs().max()) for a, b in zip(got, ref)],
                         "scale": [float(b.abs().max()) for b in ref]})
print(json.dumps(out))
"""


def test_triton_kernel_matches_the_op_in_the_interpreter():
    env = dict(os.environ, TRITON_INTERPRET="1", PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-c", CHECK], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["verified_on_cpu"]  # the per-device check passes where the kernel runs
    for case in out["cases"]:  # values, query and key gradients (the kernel accumulates in float32)
        for diff, scale in zip(case["diff"], case["scale"]):
            assert diff <= 1e-5 * max(1.0, scale), case


def test_a_device_the_kernel_cannot_run_on_keeps_the_op_with_one_warning(caplog):
    triton_verified.cache_clear()
    try:
        with caplog.at_level(logging.WARNING), torch.no_grad():
            assert not triton_verified(torch.device("cpu"))
            assert not triton_verified(torch.device("cpu"))  # checked once per device
    finally:
        triton_verified.cache_clear()
    warnings = [r for r in caplog.records if "Triton kernel is not used on cpu" in r.getMessage()]
    assert len(warnings) == 1
