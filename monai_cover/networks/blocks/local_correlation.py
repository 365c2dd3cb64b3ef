"""Windowed dot products between two feature maps, vectorised over the window offsets.

``s[n, j, p] = sum_c q[n, c, p] * k[n, c, p + o_j]`` for every offset ``o_j`` in ``{-r..r}^d``. Keys outside the
map count as zeros (the caller masks them out). The window is read through a zero-copy strided view of the
zero-padded key map, so there is no Python loop over offsets and no ``(C, K, *S)`` tensor is ever built:
the loop runs over the few channels of one head, and each step touches ``K * |S|`` numbers (memory linear in
voxels). The backward pass is written out so that autograd does not keep the strided views.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F

__all__ = ["local_correlation", "window_offsets", "window_view"]


def window_offsets(radius: int, spatial_dims: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """All window offsets, ``(K, d)`` with ``K = (2r+1)^d``, in the order used by :func:`local_correlation`."""
    rng = range(-radius, radius + 1)
    return torch.tensor(list(itertools.product(rng, repeat=spatial_dims)), device=device, dtype=dtype)


def window_view(padded: torch.Tensor, radius: int, diagonal: bool = False) -> torch.Tensor:
    """Strided view of every window of a map padded by ``radius`` on each side.

    Args:
        padded: contiguous ``(N, *P)`` map (``P = S + 2r``), or ``(N, K, *P)`` when ``diagonal``.
        radius: window radius ``r``.
        diagonal: read ``padded[n, j, p + j]`` instead of ``padded[n, p + j]`` (used by the key gradient).

    Returns:
        ``(N, n, ..., n, *S)`` view (``n = 2r + 1``), no copy.
    """
    n = 2 * radius + 1
    d = padded.ndim - (2 if diagonal else 1)
    spatial = padded.shape[-d:]
    size_s = [s - 2 * radius for s in spatial]
    st = padded.stride()
    st_sp = list(st[-d:])
    if diagonal:
        # the K axis of ``padded`` is flat; its per-axis strides follow the (n,)*d row-major layout
        k_strides = [st[1] * n ** (d - 1 - i) for i in range(d)]
        st_k = [k + s for k, s in zip(k_strides, st_sp)]
    else:
        st_k = st_sp
    return padded.as_strided((padded.shape[0], *([n] * d), *size_s), (st[0], *st_k, *st_sp), padded.storage_offset())


def _pad(x: torch.Tensor, radius: int, d: int) -> torch.Tensor:
    return F.pad(x, [radius] * (2 * d)).contiguous()


class _LocalCorrelation(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q: torch.Tensor, k: torch.Tensor, radius: int) -> torch.Tensor:
        n_, c_ = q.shape[:2]
        d = q.ndim - 2
        kp = _pad(k, radius, d)
        n = 2 * radius + 1
        s = q.new_zeros((n_, *([n] * d), *q.shape[2:]))
        expand = (slice(None),) + (None,) * d
        for c in range(c_):
            s.addcmul_(q[:, c][expand], window_view(kp[:, c], radius))
        ctx.save_for_backward(q, k)
        ctx.radius = radius
        return s.flatten(1, d)

    @staticmethod
    def backward(ctx, grad_s: torch.Tensor):
        q, k = ctx.saved_tensors
        r = ctx.radius
        d = q.ndim - 2
        n = 2 * r + 1
        kdims = tuple(range(1, d + 1))
        g = grad_s.reshape(q.shape[0], *([n] * d), *q.shape[2:])
        grad_q = grad_k = None
        if ctx.needs_input_grad[0]:
            kp = _pad(k, r, d)
            grad_q = torch.stack([(g * window_view(kp[:, c], r)).sum(kdims) for c in range(q.shape[1])], 1)
        if ctx.needs_input_grad[1]:
            # dk(p) = sum_o g(p - o, o) q(p - o): flip the offsets, pad, read diagonally -> same form as forward
            gf = _pad(g.flip(kdims).flatten(1, d), r, d)
            gdiag = window_view(gf, r, diagonal=True)
            qp = _pad(q, r, d)
            grad_k = torch.stack([(gdiag * window_view(qp[:, c], r)).sum(kdims) for c in range(q.shape[1])], 1)
        return grad_q, grad_k, None


def local_correlation(q: torch.Tensor, k: torch.Tensor, radius: int) -> torch.Tensor:
    """Dot products of each query vector with the key vectors in its ``(2r+1)^d`` window.

    Args:
        q: ``(N, C, *S)`` queries.
        k: ``(N, C, *S)`` keys (same shape); positions outside the map read as zero vectors.
        radius: window radius ``r`` in voxels.

    Returns:
        ``(N, K, *S)`` similarities, ``K = (2r+1)^d``, offsets ordered as :func:`window_offsets`.
    """
    if q.shape != k.shape:
        raise ValueError(f"local_correlation: query shape {tuple(q.shape)} != key shape {tuple(k.shape)}.")
    return _LocalCorrelation.apply(q, k, radius)
