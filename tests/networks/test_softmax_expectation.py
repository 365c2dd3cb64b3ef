"""``softmax_expectation``: MoV's soft arg-max with a fused backward pass, checked against autograd of the plain
``softmax`` + ``matmul`` it replaces."""

from __future__ import annotations

import pytest
import torch

from monai_cover.networks.blocks import softmax_expectation, window_offsets


def _inputs(dtype=torch.float32, seed=0):
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, 9, 4, 3, generator=gen, dtype=torch.float64).to(dtype)
    logits[0, :4, 1, 2] = float("-inf")  # keys outside the map: excluded, as MoV's window bias does
    logits[1, 8, :, 0] = float("-inf")
    return logits.requires_grad_(), window_offsets(1, 2, dtype=dtype)


def test_values_and_gradients_equal_softmax_then_matmul():
    logits, offsets = _inputs()
    weights = torch.randn(2, 2, 4, 3, generator=torch.Generator().manual_seed(1))
    v = softmax_expectation(logits, offsets)
    (g,) = torch.autograd.grad((v * weights).sum(), logits)
    w = torch.softmax(logits, 1)
    v_ref = torch.einsum("kd,nk...->nd...", offsets, w)
    (g_ref,) = torch.autograd.grad((v_ref * weights).sum(), logits)
    torch.testing.assert_close(v, v_ref, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(g, g_ref, atol=1e-6, rtol=1e-6)
    assert torch.all(g[0, :4, 1, 2] == 0) and torch.all(g[1, 8, :, 0] == 0)  # excluded entries get no gradient


def test_gradcheck_float64():
    logits, offsets = _inputs(torch.float64)
    finite = logits.detach().clone()
    finite[~torch.isfinite(finite)] = -30.0  # gradcheck perturbs every entry: -inf stays -inf, so use a finite floor
    finite.requires_grad_()
    assert torch.autograd.gradcheck(lambda x: softmax_expectation(x, offsets), (finite,))


def test_float32_under_bf16_autocast():
    """Under CPU bfloat16 autocast the probabilities and the expected vectors stay float32."""
    logits, offsets = _inputs()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        v = softmax_expectation(logits, offsets)
    assert v.dtype == torch.float32
    torch.testing.assert_close(v, softmax_expectation(logits, offsets))


def test_mismatched_offsets_are_refused():
    logits, _ = _inputs()
    with pytest.raises(ValueError, match="9 logits per position for 25 vectors"):
        softmax_expectation(logits, window_offsets(2, 2))
