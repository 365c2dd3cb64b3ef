"""The expected value of a set of vectors under a softmax over a channel axis (MoV's soft arg-max), with a fused
backward pass.

``v(p) = sum_k softmax(s(p))_k o_k``. Autograd through ``softmax`` then ``matmul`` builds two ``(N, K, *S)``
gradients (the weights', then the logits') and reads the weights twice; with ``K = 125`` offsets in 3D these are
the largest arrays of MoV. Since ``sum_j w_j (o_j . g) = v . g``, the logits' gradient is
``w_k (o_k . g - v . g)``: one ``(N, K, *S)`` array written by one matrix product and updated in place.
"""

from __future__ import annotations

import torch

__all__ = ["softmax_expectation"]


class _SoftmaxExpectation(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        n, k = logits.shape[:2]
        dtype = torch.promote_types(logits.dtype, torch.float32)  # float32, or float64 for float64 logits
        with torch.autocast(logits.device.type, enabled=False):
            w = torch.softmax(logits.to(dtype), dim=1)
            v = torch.matmul(values.to(dtype).t(), w.view(n, k, -1))  # (N, d, |S|)
        ctx.save_for_backward(w, values, v)
        return v.view(n, values.shape[1], *logits.shape[2:])

    @staticmethod
    def backward(ctx, grad_v: torch.Tensor):
        w, values, v = ctx.saved_tensors
        n, k = w.shape[:2]
        with torch.autocast(grad_v.device.type, enabled=False):
            g = grad_v.to(w.dtype).reshape(n, values.shape[1], -1)
            grad = torch.matmul(values.to(w.dtype), g)  # (N, K, |S|): o_k . g
            grad.sub_((v * g).sum(1, keepdim=True)).mul_(w.view(n, k, -1))
        return grad.view_as(w), None


def softmax_expectation(logits: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """Expected vector under ``softmax(logits)`` over axis 1, computed in float32 (float64 for float64 logits),
    autocast or not.

    Args:
        logits: ``(N, K, *S)`` scores; ``-inf`` excludes an entry (at least one per position must be finite).
        values: ``(K, d)`` vectors, e.g. window offsets in voxels (no gradient is computed for them).

    Returns:
        ``(N, d, *S)`` expected vectors.
    """
    if logits.shape[1] != values.shape[0]:
        raise ValueError(f"softmax_expectation: {logits.shape[1]} logits per position for {values.shape[0]} vectors.")
    return _SoftmaxExpectation.apply(logits, values)
