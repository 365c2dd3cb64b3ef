"""Benchmark ``local_correlation`` (the windowed dot product inside MoV) against autograd through the offset loop.

For shapes of the MoV levels (one 8-channel head; 2D 128² and 64², 3D 24³-64³, window radius 2) this times, side by
side in one process, the forward and the backward pass of

* ``ours``: :func:`monai_cover.networks.blocks.local_correlation` (strided-view forward, hand-written backward), and
* ``loop``: the reference formulation, one ``(q * k_shifted).sum(1)`` per window offset with autograd keeping every
  product (what the authors' script does, and what ``tests/networks/test_local_correlation.py`` checks against),

alternating the two for ``--repeats`` rounds and reporting each one's fastest round in ms, with the ratio
``loop / ours`` (above 1: ours is faster). The gradients are compared first (max abs difference).

Run from the repository root::

    PYTHONPATH=. python benchmarks/local_correlation.py --threads 2 --repeats 5
"""

from __future__ import annotations

import argparse
import itertools
import os
import time

import torch
import torch.nn.functional as F

from monai_cover.networks.blocks import local_correlation

#: (N, C, *S): N = batch x heads of a level, C = channels per head
SHAPES = [(2, 8, 128, 128), (8, 8, 64, 64), (4, 8, 24, 24, 24), (1, 8, 48, 48, 48), (1, 8, 64, 64, 64)]


def offset_loop(q: torch.Tensor, k: torch.Tensor, radius: int) -> torch.Tensor:
    """The reference: ``s[:, j, p] = sum_c q[:, c, p] k[:, c, p + o_j]``, one slice per offset, zeros outside."""
    spatial = q.shape[2:]
    kp = F.pad(k, [radius] * (2 * len(spatial)))
    out = []
    for start in itertools.product(range(2 * radius + 1), repeat=len(spatial)):
        window = tuple(slice(a, a + s) for a, s in zip(start, spatial))
        out.append((q * kp[(Ellipsis, *window)]).sum(1))
    return torch.stack(out, 1)


def fwd_bwd(fn, q: torch.Tensor, k: torch.Tensor, grad: torch.Tensor, radius: int) -> tuple[float, float]:
    """Seconds of one forward and one backward pass (gradients of both inputs)."""
    q.grad = k.grad = None
    t0 = time.perf_counter()
    s = fn(q, k, radius)
    t1 = time.perf_counter()
    s.backward(grad)
    return t1 - t0, time.perf_counter() - t1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--radius", type=int, default=2)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.2f}")
    print("| shape (N x C x S) | pass | loop ms | ours ms | loop / ours |")
    print("|---|---|---|---|---|")
    for shape in SHAPES:
        gen = torch.Generator().manual_seed(0)
        q = torch.randn(shape, generator=gen).requires_grad_()
        k = torch.randn(shape, generator=gen).requires_grad_()
        grad = torch.randn(shape[0], (2 * args.radius + 1) ** (len(shape) - 2), *shape[2:], generator=gen)
        offset_loop(q, k, args.radius).backward(grad)
        ref = (q.grad.clone(), k.grad.clone())
        times = {"loop": [], "ours": []}
        for _ in range(args.repeats):  # alternate, so load changes hit both alike
            times["loop"].append(fwd_bwd(offset_loop, q, k, grad, args.radius))
            times["ours"].append(fwd_bwd(local_correlation, q, k, grad, args.radius))
        err = max((q.grad - ref[0]).abs().max().item(), (k.grad - ref[1]).abs().max().item())
        name = "x".join(map(str, shape))
        for i, part in enumerate(("forward", "backward")):
            loop, ours = (min(t[i] for t in times[m]) * 1000 for m in ("loop", "ours"))
            print(f"| {name} | {part} | {loop:.0f} | {ours:.0f} | {loop / ours:.2f} |")
        print(f"|  | max grad difference | {err:.1e} | | |")
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
