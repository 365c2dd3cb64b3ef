"""A Triton kernel for :func:`~monai_cover.networks.blocks.local_correlation` on CUDA (forward and backward).

Same definition, ``s[n, j, p] = sum_c q[n, c, p] k[n, c, p + o_j]`` with keys outside the map read as zero, for
2D and 3D maps, computed in float32 and stored in the inputs' dtype. One program handles one (map, offset, block
of positions) in the forward pass; in the backward pass one (map, channel, block) loops over the offsets and
accumulates both gradients, so nothing is written twice and no atomics are needed.

It is used automatically for CUDA tensors when Triton is installed (``pip install triton``; the ``gpu`` extra),
after a one-off check against the PyTorch op on each device (a mismatch or a compile failure logs one warning and
keeps the PyTorch op). Without CUDA it runs only under Triton's interpreter (``TRITON_INTERPRET=1``), which is how
the tests hold it to the PyTorch op on CPU (Triton reads ``TRITON_INTERPRET`` when this module is imported).
"""

from __future__ import annotations

import torch
from monai.utils import optional_import

triton, TRITON_AVAILABLE = optional_import("triton")
tl, _ = optional_import("triton.language")

__all__ = ["TRITON_AVAILABLE", "triton_local_correlation"]

BLOCK = 128

if TRITON_AVAILABLE:

    @triton.jit
    def _position(offs, j, s0, s1, s2, R: tl.constexpr, D: tl.constexpr):
        # position of flat index ``offs`` and offset ``j`` (window_offsets' order: the last axis fastest)
        x = offs // (s1 * s2)
        y = (offs // s2) % s1
        z = offs % s2
        w = 2 * R + 1
        if D == 3:
            ox = j // (w * w) - R
            oy = (j // w) % w - R
            oz = j % w - R
        else:
            ox = j // w - R
            oy = j % w - R
            oz = j * 0
        return x, y, z, ox, oy, oz

    @triton.jit
    def _read_at(x, y, z, inside, s0, s1, s2):
        # flat index of (x, y, z) and whether it lies in the map (outside reads are masked: zeros)
        valid = inside & (x >= 0) & (x < s0) & (y >= 0) & (y < s1) & (z >= 0) & (z < s2)
        return (x * s1 + y) * s2 + z, valid

    @triton.jit
    def forward_kernel(q_ptr, k_ptr, s_ptr, C, K, s0, s1, s2, R: tl.constexpr, D: tl.constexpr,
                       BLOCK: tl.constexpr):
        n = tl.program_id(0)
        j = tl.program_id(1)
        P = s0 * s1 * s2
        offs = tl.program_id(2) * BLOCK + tl.arange(0, BLOCK)
        inside = offs < P
        x, y, z, ox, oy, oz = _position(offs, j, s0, s1, s2, R, D)
        src, valid = _read_at(x + ox, y + oy, z + oz, inside, s0, s1, s2)
        acc = tl.zeros([BLOCK], dtype=tl.float32)
        for c in range(0, C):
            base = (n * C + c).to(tl.int64) * P
            qv = tl.load(q_ptr + base + offs, mask=inside, other=0.0).to(tl.float32)
            kv = tl.load(k_ptr + base + src, mask=valid, other=0.0).to(tl.float32)
            acc += qv * kv
        out = (n * K + j).to(tl.int64) * P
        tl.store(s_ptr + out + offs, acc.to(s_ptr.dtype.element_ty), mask=inside)

    @triton.jit
    def backward_kernel(q_ptr, k_ptr, g_ptr, dq_ptr, dk_ptr, C, K, s0, s1, s2, R: tl.constexpr, D: tl.constexpr,
                        BLOCK: tl.constexpr):
        # dq(p) = sum_j g(p, j) k(p + o_j);  dk(p) = sum_j g(p - o_j, j) q(p - o_j)
        n = tl.program_id(0)
        c = tl.program_id(1)
        P = s0 * s1 * s2
        offs = tl.program_id(2) * BLOCK + tl.arange(0, BLOCK)
        inside = offs < P
        base = (n * C + c).to(tl.int64) * P
        acc_q = tl.zeros([BLOCK], dtype=tl.float32)
        acc_k = tl.zeros([BLOCK], dtype=tl.float32)
        for j in range(0, K):
            x, y, z, ox, oy, oz = _position(offs, j, s0, s1, s2, R, D)
            gbase = (n * K + j).to(tl.int64) * P
            fwd_src, fwd = _read_at(x + ox, y + oy, z + oz, inside, s0, s1, s2)
            g = tl.load(g_ptr + gbase + offs, mask=inside, other=0.0).to(tl.float32)
            kv = tl.load(k_ptr + base + fwd_src, mask=fwd, other=0.0).to(tl.float32)
            acc_q += g * kv
            src, back = _read_at(x - ox, y - oy, z - oz, inside, s0, s1, s2)
            gb = tl.load(g_ptr + gbase + src, mask=back, other=0.0).to(tl.float32)
            qv = tl.load(q_ptr + base + src, mask=back, other=0.0).to(tl.float32)
            acc_k += gb * qv
        tl.store(dq_ptr + base + offs, acc_q.to(dq_ptr.dtype.element_ty), mask=inside)
        tl.store(dk_ptr + base + offs, acc_k.to(dk_ptr.dtype.element_ty), mask=inside)


def _geometry(q: torch.Tensor) -> tuple[int, int, list[int], int]:
    spatial = list(q.shape[2:]) + [1] * (3 - (q.ndim - 2))
    return q.shape[0], q.shape[1], spatial, q.ndim - 2


class _TritonLocalCorrelation(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q: torch.Tensor, k: torch.Tensor, radius: int) -> torch.Tensor:
        q, k = q.contiguous(), k.contiguous()
        n, c, (s0, s1, s2), d = _geometry(q)
        kn = (2 * radius + 1) ** d
        s = q.new_empty((n, kn, *q.shape[2:]))
        grid = (n, kn, triton.cdiv(s0 * s1 * s2, BLOCK))
        forward_kernel[grid](q, k, s, c, kn, s0, s1, s2, R=radius, D=d, BLOCK=BLOCK)
        ctx.save_for_backward(q, k)
        ctx.radius = radius
        return s

    @staticmethod
    def backward(ctx, grad_s: torch.Tensor):
        q, k = ctx.saved_tensors
        g = grad_s.contiguous()
        n, c, (s0, s1, s2), d = _geometry(q)
        dq, dk = torch.empty_like(q), torch.empty_like(k)
        grid = (n, c, triton.cdiv(s0 * s1 * s2, BLOCK))
        backward_kernel[grid](q, k, g, dq, dk, c, g.shape[1], s0, s1, s2, R=ctx.radius, D=d, BLOCK=BLOCK)
        return dq, dk, None


def triton_local_correlation(q: torch.Tensor, k: torch.Tensor, radius: int) -> torch.Tensor:
    """:func:`~monai_cover.networks.blocks.local_correlation` through the Triton kernels (CUDA tensors, or any
    tensors under ``TRITON_INTERPRET=1``). ``(N, C, *S), (N, C, *S) -> (N, (2r+1)^d, *S)``."""
    return _TritonLocalCorrelation.apply(q, k, radius)
