"""Windowed dot products between two feature maps, vectorised over the window offsets.

``s[n, j, p] = sum_c q[n, c, p] * k[n, c, p + o_j]`` for every offset ``o_j`` in ``{-r..r}^d``. Keys outside the
map count as zeros (the caller masks them out). The window is read through a zero-copy strided view of the
zero-padded key map, so there is no Python loop over offsets and no ``(C, K, *S)`` tensor is ever built:
the loop runs over the few channels of one head, and each step touches ``K * |S|`` numbers (memory linear in
voxels). The backward pass is written out so that autograd keeps only ``q`` and ``k``: it loops over the offsets
instead, each step an in-place multiply-add of one ``(N, C, *S)`` slab into the query gradient and into a padded
key gradient. That reads every array in contiguous runs, unlike a channel loop with a diagonal strided read of the
flipped gradient (``benchmarks/local_correlation.py`` compares the two).
"""

from __future__ import annotations

import functools
import itertools
import logging

import torch
import torch.nn.functional as F

from monai_cover.errors import first_line

__all__ = ["local_correlation", "triton_verified", "window_offsets", "window_view"]

logger = logging.getLogger(__name__)


def window_offsets(radius: int, spatial_dims: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """All window offsets, ``(K, d)`` with ``K = (2r+1)^d``, in the order used by :func:`local_correlation`."""
    rng = range(-radius, radius + 1)
    return torch.tensor(list(itertools.product(rng, repeat=spatial_dims)), device=device, dtype=dtype)


def window_view(padded: torch.Tensor, radius: int) -> torch.Tensor:
    """Strided view of every window of a map padded by ``radius`` on each side.

    Args:
        padded: contiguous ``(N, *P)`` map, ``P = S + 2r``.
        radius: window radius ``r``.

    Returns:
        ``(N, n, ..., n, *S)`` view (``n = 2r + 1``), no copy.
    """
    n = 2 * radius + 1
    d = padded.ndim - 1
    size_s = [s - 2 * radius for s in padded.shape[1:]]
    st = padded.stride()
    return padded.as_strided((padded.shape[0], *([n] * d), *size_s), (st[0], *st[1:], *st[1:]),
                             padded.storage_offset())


def _windows(radius: int, spatial: tuple[int, ...]):
    """``(j, index)`` for every offset ``j`` (order of :func:`window_offsets`): the index of the ``(N, C, *S)``
    slab of a padded ``(N, C, *P)`` map that offset ``j`` reads."""
    rng = range(2 * radius + 1)
    for j, start in enumerate(itertools.product(rng, repeat=len(spatial))):
        yield j, (slice(None), slice(None), *(slice(a, a + s) for a, s in zip(start, spatial)))


def _pad(x: torch.Tensor, radius: int, d: int) -> torch.Tensor:
    return F.pad(x, [radius] * (2 * d)).contiguous()


class _LocalCorrelation(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q: torch.Tensor, k: torch.Tensor, radius: int) -> torch.Tensor:
        n_, c_ = q.shape[:2]
        d = q.ndim - 2
        kp = _pad(k, radius, d)
        n = 2 * radius + 1
        # returned as allocated (not a view of it), so the caller may add its mask in place
        out = q.new_zeros((n_, n**d, *q.shape[2:]))
        s = out.view(n_, *([n] * d), *q.shape[2:])
        expand = (slice(None),) + (None,) * d
        for c in range(c_):
            s.addcmul_(q[:, c][expand], window_view(kp[:, c], radius))
        ctx.save_for_backward(q, k)
        ctx.radius = radius
        return out

    @staticmethod
    def backward(ctx, grad_s: torch.Tensor):
        q, k = ctx.saved_tensors
        r = ctx.radius
        d = q.ndim - 2
        spatial = tuple(q.shape[2:])
        # dq(p) = sum_o g(p, o) k(p + o);  dk(p + o) += g(p, o) q(p), accumulated in a padded map, then cropped
        want_q, want_k = ctx.needs_input_grad[:2]
        kp = _pad(k, r, d) if want_q else None
        grad_q = torch.empty_like(q) if want_q else None
        grad_kp = q.new_zeros((*q.shape[:2], *(s + 2 * r for s in spatial))) if want_k else None
        for j, window in _windows(r, spatial):
            g = grad_s[:, j : j + 1]
            if want_q and j == 0:
                torch.mul(g, kp[window], out=grad_q)  # the first offset initialises the query gradient
            elif want_q:
                grad_q.addcmul_(g, kp[window])
            if want_k:
                grad_kp[window].addcmul_(g, q)
        grad_k = grad_kp[(slice(None), slice(None), *(slice(r, r + s) for s in spatial))] if want_k else None
        return grad_q, grad_k, None


def local_correlation(q: torch.Tensor, k: torch.Tensor, radius: int) -> torch.Tensor:
    """Dot products of each query vector with the key vectors in its ``(2r+1)^d`` window.

    Args:
        q: ``(N, C, *S)`` queries.
        k: ``(N, C, *S)`` keys (same shape); positions outside the map read as zero vectors.
        radius: window radius ``r`` in voxels.

    Returns:
        ``(N, K, *S)`` similarities, ``K = (2r+1)^d``, offsets ordered as :func:`window_offsets`; on a CPU in
        float32 for reduced-precision inputs, elsewhere in the dtype the two inputs promote to.
    """
    if q.shape != k.shape:
        raise ValueError(f"local_correlation: query shape {tuple(q.shape)} != key shape {tuple(k.shape)}.")
    if q.is_cuda and triton_verified(q.device):
        from monai_cover.networks.blocks.local_correlation_triton import triton_local_correlation

        return triton_local_correlation(q, k, radius)
    dtype = torch.promote_types(q.dtype, k.dtype)
    if q.device.type == "cpu" and dtype in (torch.bfloat16, torch.float16):
        # a CPU multiply-adds bfloat16 no faster than float32 and converts every slab of a reduced or mixed-dtype
        # input (under bf16 autocast the queries come in bfloat16, the warped keys in float32): float32 is faster
        # here (benchmarks/step.py)
        dtype = torch.float32
    return _LocalCorrelation.apply(q.to(dtype), k.to(dtype), radius)


@functools.cache
def triton_verified(device: torch.device) -> bool:
    """Whether the Triton kernel (:mod:`~monai_cover.networks.blocks.local_correlation_triton`) is installed and
    gives this op's values and gradients on ``device``, checked once per device on small random maps (2D and 3D).
    A compile failure or a mismatch logs one warning and keeps this op."""
    try:
        from monai_cover.networks.blocks.local_correlation_triton import TRITON_AVAILABLE, triton_local_correlation
    except Exception:  # a broken Triton install must not stop training
        return False
    if not TRITON_AVAILABLE:
        return False
    gen = torch.Generator().manual_seed(0)
    try:  # the first call may come from validation (no_grad) or under autocast: check in float32 with gradients
        with torch.enable_grad(), torch.autocast(device.type, enabled=False):
            _check_triton(triton_local_correlation, device, gen)
    except Exception as e:
        logger.warning(f"local_correlation: the Triton kernel is not used on {device} ({first_line(e)}); the "
                       "PyTorch op is used instead")
        return False
    return True


def _check_triton(kernel, device: torch.device, gen: torch.Generator) -> None:
    """Raise unless ``kernel`` gives :class:`_LocalCorrelation`'s values and gradients on 2D and 3D random maps."""
    for shape in ((2, 8, 9, 7), (1, 8, 5, 6, 7)):
        q, k = (torch.randn(shape, generator=gen).to(device).requires_grad_() for _ in range(2))
        outputs = []
        for fn in (kernel, _LocalCorrelation.apply):
            s = fn(q, k, 2)
            outputs.append([s, *torch.autograd.grad(s, (q, k), torch.ones_like(s))])
        if not all(torch.allclose(a, b, atol=1e-3, rtol=1e-3) for a, b in zip(*outputs)):
            raise ValueError("values or gradients differ from the PyTorch op")
