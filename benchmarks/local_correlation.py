"""Benchmark ``local_correlation`` (the windowed dot product inside MoV) against autograd through the offset loop.

For shapes of the MoV levels (one 8-channel head; 2D 128² and 64², 3D 24³-64³, window radius 2) this times, side by
side in one process, the forward and the backward pass of

* ``loop``: the reference formulation, one ``(q * k_shifted).sum(1)`` per window offset with autograd keeping every
  product (what the authors' script does, and what ``tests/networks/test_local_correlation.py`` checks against),
* ``op``: our PyTorch op (strided-view forward, hand-written offset-loop backward), and
* ``triton`` (CUDA with Triton installed): the kernel :func:`~monai_cover.networks.blocks.local_correlation` uses
  there,

alternating them for ``--repeats`` rounds and reporting each one's fastest round in ms, with the ratio to ``loop``
(above 1: faster than the loop). The gradients are compared first (max abs difference to the loop's).

Run from the repository root::

    PYTHONPATH=. python benchmarks/local_correlation.py --threads 2 --repeats 5
    PYTHONPATH=. python benchmarks/local_correlation.py --device cuda
"""

from __future__ import annotations

import argparse
import itertools
import os
import time

import torch
import torch.nn.functional as F

from monai_cover.networks.blocks.local_correlation import _LocalCorrelation

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
    sync = torch.cuda.synchronize if q.is_cuda else (lambda: None)
    q.grad = k.grad = None
    sync()
    t0 = time.perf_counter()
    s = fn(q, k, radius)
    sync()
    t1 = time.perf_counter()
    s.backward(grad)
    sync()
    return t1 - t0, time.perf_counter() - t1


def implementations(device: str) -> dict:
    impls = {"loop": offset_loop, "op": _LocalCorrelation.apply}
    if device == "cuda":
        from monai_cover.networks.blocks.local_correlation_triton import TRITON_AVAILABLE, triton_local_correlation

        if TRITON_AVAILABLE:
            impls["triton"] = triton_local_correlation
    return impls


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--radius", type=int, default=2)
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    gpu = f" ({torch.cuda.get_device_name()})" if args.device == "cuda" else ""
    print(f"torch {torch.__version__}, {args.device}{gpu}, {torch.get_num_threads()} threads, load average "
          f"{os.getloadavg()[0]:.2f}")
    impls = implementations(args.device)
    others = [m for m in impls if m != "loop"]
    print("| shape (N x C x S) | pass | loop ms | " + " | ".join(f"{m} ms | loop / {m}" for m in others) + " |")
    print("|---|---|---|" + "---|---|" * len(others))
    for shape in SHAPES:
        gen = torch.Generator().manual_seed(0)
        q, k = (torch.randn(shape, generator=gen).to(args.device).requires_grad_() for _ in range(2))
        grad = torch.randn(shape[0], (2 * args.radius + 1) ** (len(shape) - 2), *shape[2:], generator=gen)
        grad = grad.to(args.device)
        errors = {}
        ref = None
        for name, fn in impls.items():
            q.grad = k.grad = None
            fn(q, k, args.radius).backward(grad)
            if ref is None:
                ref = (q.grad.clone(), k.grad.clone())
            errors[name] = max((q.grad - ref[0]).abs().max().item(), (k.grad - ref[1]).abs().max().item())
        times = {m: [] for m in impls}
        for _ in range(args.repeats):  # alternate, so load changes hit all alike
            for name, fn in impls.items():
                times[name].append(fwd_bwd(fn, q, k, grad, args.radius))
        name = "x".join(map(str, shape))
        for i, part in enumerate(("forward", "backward")):
            best = {m: min(t[i] for t in times[m]) * 1000 for m in impls}
            cells = " | ".join(f"{best[m]:.1f} | {best['loop'] / best[m]:.2f}" for m in others)
            print(f"| {name} | {part} | {best['loop']:.1f} | {cells} |")
        print("|  | max grad difference to loop | | " + " | ".join(f"{errors[m]:.1e} | –" for m in others) + " |")
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
