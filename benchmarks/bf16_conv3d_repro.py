"""Standalone reproduction of the PyTorch CPU bug that ``monai_cover.networks.blocks.bf16_conv3d`` works around, in the
form an upstream report needs (only ``torch``, no project code):

    python benchmarks/bf16_conv3d_repro.py [--channels 32] [--threads 1]

For each input depth it prints the weight and input gradients of one ``nn.Conv3d(C, C, 3, padding=1)`` under CPU
bfloat16 autocast next to float32's (same weights and input), and whether bf16's are wrong (non-finite or off by
more than 10%: bf16 rounding alone stays within ~1%). Exit status 1 when some depth is wrong, so the script
also tells whether a given torch build / CPU still needs the workaround. On torch 2.13.0 with an AVX512-BF16 CPU
every depth-2 row was wrong (weight gradient NaN, inf or 1e30+), all other rows right.
"""

from __future__ import annotations

import argparse
import platform
import sys

import torch
import torch.nn as nn


def gradients(conv: nn.Conv3d, x: torch.Tensor, bf16: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(weight gradient, input gradient) of ``conv(x).float().square().mean()`` as float32 tensors."""
    conv.zero_grad()
    x = x.detach().clone().requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        y = conv(x)
    y.float().square().mean().backward()
    return conv.weight.grad.detach().float().clone(), x.grad.detach().float()


def rel_error(a: torch.Tensor, ref: torch.Tensor) -> float:
    """``|a - ref| / |ref|`` (Frobenius), inf when ``a`` is not finite."""
    if not torch.isfinite(a).all():
        return float("inf")
    return float((a - ref).norm() / ref.norm().clamp_min(1e-30))


def cpu_name() -> str:
    """The CPU model and whether it has AVX512-BF16 (Linux ``/proc/cpuinfo``; the machine name elsewhere)."""
    try:
        info = open("/proc/cpuinfo").read()
    except OSError:
        return platform.machine()
    model = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")),
                 platform.machine())
    return f"{model} ({'with' if 'avx512_bf16' in info else 'without'} AVX512-BF16)"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--channels", type=int, default=32)
    ap.add_argument("--size", type=int, default=4, help="height and width of the input")
    ap.add_argument("--depths", type=int, nargs="+", default=[1, 2, 3, 4, 6, 8])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--tolerance", type=float, default=0.1, help="relative error counted as wrong")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    conv = nn.Conv3d(args.channels, args.channels, 3, padding=1)
    print(f"torch {torch.__version__}, {cpu_name()}, "
          f"{args.threads} thread(s), Conv3d({args.channels}, {args.channels}, 3, padding=1), bf16 autocast vs float32")
    print("| input shape | max abs weight grad f32 | bf16 | weight grad rel err | input grad rel err | wrong |")
    print("|---|---|---|---|---|---|")
    wrong = 0
    for depth in args.depths:
        x = torch.randn(2, args.channels, depth, args.size, args.size)
        w32, x32 = gradients(conv, x, bf16=False)
        w16, x16 = gradients(conv, x, bf16=True)
        ew, ex = rel_error(w16, w32), rel_error(x16, x32)
        bad = not (ew <= args.tolerance and ex <= args.tolerance)
        wrong += bad
        print(f"| {tuple(x.shape)} | {w32.abs().max():.3g} | {w16.abs().max():.3g} | {ew:.3g} | {ex:.3g} | "
              f"{'**yes**' if bad else 'no'} |")
    print(f"{wrong} of {len(args.depths)} depths wrong")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
