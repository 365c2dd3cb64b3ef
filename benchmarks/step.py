"""Benchmark the COVER pretraining step: vectorised Mixture of Vectors (MoV) vs the naive per-offset loop.

For each requested dimensionality (2D, 3D) this times, side by side in one run:

* ``step``: one full pretraining step (forward of :class:`~monai_cover.networks.CoverNet`, :class:`CoverLoss`,
  backward, gradient-norm clipping at 1.0, Adam step), and
* ``MoV+VPA``: forward + backward of ``net.vpa(fa, fb)`` alone (L1 loss on ``ddf_pred``) on fixed, precomputed backbone
  features that require grad,

once with the vectorised :func:`monai_cover.networks.blocks.mixture_of_vectors` and once with the naive loop
``monai_cover.networks.blocks.mixture_of_vectors_loop``, which also warps the backbone features before projecting
them, as the reference does (``warp_before_projection``). Both networks are built from the same seed, so their weights
are identical; a numerical check at start prints how far the two ``ddf_pred`` (and the feature gradients) are apart.

Every (dims, part, impl) measurement runs in a fresh process (multiprocessing ``spawn``) so that peak memory is
not polluted by earlier measurements: on CUDA ``torch.cuda.max_memory_allocated``, on CPU the peak-RSS increase
(``VmHWM`` after minus ``VmRSS`` before, high-water mark reset via ``/proc/self/clear_refs``). Memory is read over
the first iteration, which is then followed by ``--warmup`` untimed and ``--iters`` timed iterations.

Run from the repository root::

    PYTHONPATH=. python benchmarks/step.py --dims 2 3 --iters 10 --warmup 3
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import math
import multiprocessing as mp
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

_REPO_ROOT = Path(__file__).resolve().parents[1]
if str(_REPO_ROOT) not in sys.path:  # this checkout's monai_cover, also without installing it
    sys.path.insert(0, str(_REPO_ROOT))

from monai_cover.capabilities import fast_bf16  # noqa: E402
from monai_cover.engines import CoverPretrainStep  # noqa: E402
from monai_cover.networks import CoverNet  # noqa: E402
from monai_cover.networks.blocks import mixture_of_vectors, mixture_of_vectors_loop  # noqa: E402
from monai_cover.transforms import CoverViewSampler  # noqa: E402

#: backbone widths ``(encoder channels, decoder channels)``; ``full`` is the authors' configuration
WIDTHS: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "full": ((32, 64, 128, 256, 512), (256, 128, 64, 32)),
    "half": ((16, 32, 64, 128, 256), (128, 64, 32, 16)),
    "tiny": ((8, 16, 32, 64, 128), (64, 32, 16, 8)),
}
IMPLS = ("vectorised", "loop")
PARTS = ("step", "MoV+VPA")
#: fast paths of the step (cover_pretrain settings of the same names), measured with the vectorised MoV
OPTIONS = ("default", "checkpointing", "separate_views", "channels_last", "bf16", "compile")
_AMP_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}
_MB = 1024.0**2


@dataclass(frozen=True)
class BenchConfig:
    """Everything a worker process needs to rebuild the same model and inputs."""

    dims: int
    batch: int
    size: int
    widths: str
    device: str
    amp: str  # "none", "fp16" or "bf16"
    threads: int | None
    iters: int
    warmup: int
    seed: int = 0
    option: str = "default"  # one of OPTIONS, or several joined by "+"

    def uses(self, option: str) -> bool:
        """Whether ``option`` is one of this row's fast paths."""
        return option in self.option.split("+")

    @property
    def shape(self) -> str:
        """Input shape of one view, ``B x C x *S``."""
        return "x".join(str(s) for s in (self.batch, 1, *([self.size] * self.dims)))


# ----------------------------------------------------------------------------------------------------------------
# model and data
# ----------------------------------------------------------------------------------------------------------------


def vector_fn(impl: str) -> Callable[..., torch.Tensor]:
    """The MoV similarity-to-vector function for ``impl`` (``"vectorised"`` or ``"loop"``)."""
    if impl == "vectorised":
        return mixture_of_vectors
    if impl == "loop":
        return mixture_of_vectors_loop
    raise ValueError(f"unknown MoV implementation {impl!r}")


def build_net(cfg: BenchConfig, impl: str) -> CoverNet:
    """A :class:`CoverNet` seeded with ``cfg.seed``: identical weights for every ``impl``."""
    channels, decoder_channels = WIDTHS[cfg.widths]
    torch.manual_seed(cfg.seed)
    net = CoverNet(cfg.dims, 1, channels, decoder_channels, vector_fn=vector_fn(impl),
                   checkpointing=cfg.uses("checkpointing"), separate_views=cfg.uses("separate_views"))
    if impl == "loop":  # the reference's order: warp the backbone features, then project them
        for level in net.vpa.levels:
            level.warp_before_projection = True
    return net.to(cfg.device).train()


def make_views(cfg: BenchConfig) -> dict[str, torch.Tensor]:
    """One deterministic batch of COVER views (smooth random images on a 1.5x grid, authors' default ranges)."""
    gen = torch.Generator().manual_seed(cfg.seed)
    grid = math.ceil(1.5 * cfg.size)
    coarse = torch.randn(cfg.batch, 1, *([max(2, grid // 8)] * cfg.dims), generator=gen)
    images = F.interpolate(coarse, size=(grid,) * cfg.dims, mode="bilinear" if cfg.dims == 2 else "trilinear")
    images = images + 0.1 * torch.randn(images.shape, generator=gen)
    sampler = CoverViewSampler({"spatial_dims": cfg.dims, "crop_size": cfg.size})
    sampler.set_random_state(cfg.seed)
    views = sampler(images.to(cfg.device))
    return {k: v.contiguous() for k, v in views.items()}


def autocast(cfg: BenchConfig) -> contextlib.AbstractContextManager:
    """Autocast context for ``cfg.amp`` (a no-op context when AMP is off)."""
    if cfg.amp == "none":
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(cfg.device).type, dtype=_AMP_DTYPES[cfg.amp])


def backbone_features(
    net: CoverNet, views: dict[str, torch.Tensor], cfg: BenchConfig
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Finest-first backbone features of both views, detached leaves that require grad."""
    with torch.no_grad(), autocast(cfg):
        feats = net.backbone(torch.cat([views["view_a"], views["view_b"]], 0))
    fa, fb = [], []
    for f in feats:
        a, b = f.chunk(2, 0)
        fa.append(a.detach().clone().requires_grad_(True))
        fb.append(b.detach().clone().requires_grad_(True))
    return fa, fb


def make_step(net: CoverNet, views: dict[str, torch.Tensor], cfg: BenchConfig) -> Callable[[], None]:
    """One full pretraining step as the bundle runs it (:meth:`CoverPretrainStep.update`: forward, CoverLoss,
    backward, grad clipping 1.0, Adam; GradScaler for fp16), with ``cfg.option``'s fast path."""
    opt = torch.optim.Adam(net.parameters(), lr=1e-4, weight_decay=1e-4)
    scaler = torch.amp.GradScaler(torch.device(cfg.device).type, enabled=cfg.amp == "fp16")
    step = CoverPretrainStep(sampler=None, bf16=cfg.amp == "bf16" or cfg.uses("bf16"),
                             channels_last=cfg.uses("channels_last"), compile=cfg.uses("compile"))
    return lambda: step.update(net, opt, views, amp=cfg.amp == "fp16", scaler=scaler)


def make_mov_vpa(net: CoverNet, views: dict[str, torch.Tensor], cfg: BenchConfig) -> Callable[[], None]:
    """Forward + backward of ``net.vpa`` alone on fixed backbone features (L1 loss on ``ddf_pred``)."""
    fa, fb = backbone_features(net, views, cfg)
    leaves = fa + fb

    def mov_vpa() -> None:
        net.vpa.zero_grad(set_to_none=True)
        for t in leaves:
            t.grad = None
        with autocast(cfg):
            ddf_pred = net.vpa(fa, fb)
        ddf_pred.float().abs().mean().backward()

    return mov_vpa


# ----------------------------------------------------------------------------------------------------------------
# measurement (runs in a fresh spawned process)
# ----------------------------------------------------------------------------------------------------------------


def _proc_status_kb(field: str) -> int | None:
    """A ``kB`` field of ``/proc/self/status`` (``VmRSS``, ``VmHWM``), or ``None`` where there is no procfs."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_rss_high_water_mark() -> bool:
    """Reset ``VmHWM`` to the current RSS (Linux >= 4.0); ``False`` where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _maxrss_kb() -> int:
    """Peak RSS of this process so far, in kB (``ru_maxrss`` is kB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak


@contextlib.contextmanager
def peak_memory(device: str) -> Iterator[dict[str, Any]]:
    """Measure the peak memory of the enclosed code above what is in use when it starts.

    Yields a dict that is filled with ``peak_mb`` and ``method`` on exit.
    """
    out: dict[str, Any] = {}
    gc.collect()
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        yield out
        torch.cuda.synchronize(device)
        out["peak_mb"] = (torch.cuda.max_memory_allocated(device) - base) / _MB
        out["method"] = "CUDA: torch.cuda.max_memory_allocated - memory_allocated before (stats reset)"
        return
    reset = _reset_rss_high_water_mark()
    base_kb = _proc_status_kb("VmRSS")
    if base_kb is None:  # no procfs: ru_maxrss, which may still hold the setup's peak
        base_kb = _maxrss_kb()
        yield out
        out["peak_mb"] = (_maxrss_kb() - base_kb) * 1024 / _MB
        out["method"] = "CPU: ru_maxrss after - ru_maxrss before (no procfs; setup peak can hide part of it)"
        return
    yield out
    hwm_kb = _proc_status_kb("VmHWM") or _maxrss_kb()
    out["peak_mb"] = (hwm_kb - base_kb) * 1024 / _MB
    out["method"] = (
        "CPU: peak RSS increase, VmHWM after - VmRSS before "
        + ("(VmHWM reset via /proc/self/clear_refs)" if reset else "(VmHWM not resettable: upper bound)")
    )


def _sync(device: str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def measure(cfg: BenchConfig, part: str, impl: str) -> dict[str, Any]:
    """Build model and inputs, read peak memory over one iteration, then warm up and time ``cfg.iters`` of them."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    net = build_net(cfg, impl)
    views = make_views(cfg)
    run = make_step(net, views, cfg) if part == "step" else make_mov_vpa(net, views, cfg)
    with peak_memory(cfg.device) as mem:
        run()
    for _ in range(cfg.warmup):
        run()
    times_ms = []
    for _ in range(cfg.iters):
        _sync(cfg.device)
        t0 = time.perf_counter()
        run()
        _sync(cfg.device)
        times_ms.append((time.perf_counter() - t0) * 1e3)
    return {
        "dims": cfg.dims,
        "shape": cfg.shape,
        "part": part,
        "impl": impl,
        "option": cfg.option,
        "median_ms": statistics.median(times_ms),
        "peak_mb": mem["peak_mb"],
        "memory_method": mem["method"],
        "times_ms": times_ms,
        "threads": torch.get_num_threads(),
    }


def _release(device: str) -> None:
    """Free what the last in-process row left (its tensors are garbage once :func:`measure` returns)."""
    gc.collect()
    if torch.device(device).type == "cuda":
        torch.cuda.empty_cache()


def measure_in_subprocess(cfg: BenchConfig, part: str, impl: str) -> dict[str, Any]:
    """:func:`measure` in a fresh ``spawn`` process (clean peak-memory statistics, no shared caches)."""
    with ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn")) as pool:
        return pool.submit(measure, cfg, part, impl).result()


# ----------------------------------------------------------------------------------------------------------------
# numerical check, report
# ----------------------------------------------------------------------------------------------------------------


def check_equivalence(cfg: BenchConfig) -> dict[str, Any]:
    """Same weights, same inputs (fp32): max abs difference of ``ddf_pred`` and of the MoV+VPA feature gradients."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    nets = {impl: build_net(cfg, impl) for impl in IMPLS}
    ref_state = nets["vectorised"].state_dict()
    same_weights = all(torch.equal(v, ref_state[k]) for k, v in nets["loop"].state_dict().items())
    views = make_views(cfg)
    ddf_pred, grads = {}, {}
    for impl, net in nets.items():
        with torch.no_grad():
            ddf_pred[impl] = net(views["view_a"], views["view_b"])[0]
        fa, fb = backbone_features(net, views, replace(cfg, amp="none"))
        net.vpa(fa, fb).abs().mean().backward()
        grads[impl] = [t.grad for t in fa + fb]
    ddf_diff = (ddf_pred["vectorised"] - ddf_pred["loop"]).abs().max().item()
    grad_diff = max((a - b).abs().max().item() for a, b in zip(grads["vectorised"], grads["loop"]))
    grad_scale = max(g.abs().max().item() for g in grads["loop"])
    return {
        "dims": cfg.dims,
        "same_weights": same_weights,
        "ddf_max_abs_diff": ddf_diff,
        "ddf_max_abs": ddf_pred["loop"].abs().max().item(),
        "feature_grad_max_abs_diff": grad_diff,
        "feature_grad_max_abs": grad_scale,
    }


def _fmt(x: float, digits: int) -> str:
    return f"{x:.{digits}f}"


def markdown_table(results: Sequence[dict[str, Any]]) -> str:
    """Results as a markdown table: each row's time and memory against the loop baseline (the authors'
    formulation, default settings) and against the default settings (vectorised MoV), above 1 = faster / leaner."""
    head = ("| dims | shape (BxCxS) | part | impl | option | median ms | peak MB | speed-up vs loop | "
            "memory vs loop | speed-up vs default | memory vs default |")
    lines = [head, "|---|---|---|---|---|---:|---:|---:|---:|---:|---:|"]
    by_key = {(r["dims"], r["part"], r["impl"], r.get("option", "default")): r for r in results}

    def ratios(r: dict[str, Any], ref: dict[str, Any] | None) -> list[str]:
        if ref is None or ref is r:
            return ["ref" if ref is r else "–"] * 2
        mem = f"{ref['peak_mb'] / r['peak_mb']:.2f}x" if r["peak_mb"] > 0 else "n/a"
        return [f"{ref['median_ms'] / r['median_ms']:.2f}x", mem]

    for r in results:
        option = r.get("option", "default")
        loop = by_key.get((r["dims"], r["part"], "loop", "default"))
        default = by_key.get((r["dims"], r["part"], "vectorised", "default")) if r["impl"] == "vectorised" else None
        cells = ratios(r, loop) + ratios(r, default)
        lines.append(
            f"| {r['dims']}D | {r['shape']} | {r['part']} | {r['impl']} | {option} | {_fmt(r['median_ms'], 1)} | "
            f"{_fmt(r['peak_mb'], 1)} | {' | '.join(cells)} |"
        )
    return "\n".join(lines)


def _load_average() -> list[float] | None:
    """1, 5 and 15 minute load averages (other processes on the machine skew CPU timings), if available."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def _cpu_name() -> str:
    """The CPU's model name (timings differ by CPU generation and instruction set)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def environment(device: str) -> dict[str, Any]:
    """Versions and hardware, for the JSON record."""
    env: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average_start": _load_average(),
        "cpu": _cpu_name(),
        "cpu_fast_bf16": fast_bf16("cpu"),  # without AVX512-BF16/AMX, bf16 is emulated and many times slower
    }
    if torch.device(device).type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
        env["cuda"] = torch.version.cuda
    return env


def _option(value: str) -> str:
    """``--options`` value: a name of OPTIONS or several joined by ``+``."""
    unknown = [o for o in value.split("+") if o not in OPTIONS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown option {unknown[0]!r}; choose from {', '.join(OPTIONS)}")
    return value


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line interface (see module docstring and ``benchmarks/README.md``)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--dims", type=int, nargs="+", choices=(2, 3), default=[2, 3], help="dimensionalities to run")
    p.add_argument("--iters", type=int, default=10, help="timed iterations per measurement (median reported)")
    p.add_argument("--warmup", type=int, default=3, help="untimed iterations after the memory iteration")
    p.add_argument("--batch2d", type=int, default=2, help="2D batch size (views per side)")
    p.add_argument("--size2d", type=int, default=128, help="2D crop size (images are 1.5x larger)")
    p.add_argument("--batch3d", type=int, default=1, help="3D batch size")
    p.add_argument("--size3d", type=int, default=48, help="3D crop size")
    p.add_argument("--widths", choices=tuple(WIDTHS), default="full", help="backbone widths (full = authors')")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument(
        "--amp", nargs="?", const="fp16", default="none", choices=("none", "fp16", "bf16"),
        help="CUDA autocast: fp16 (with GradScaler; the default of a bare --amp) or bf16",
    )
    p.add_argument("--options", nargs="+", type=_option, default=["default"],
                   help="fast paths of the step to time (vectorised MoV), each alone or several joined by '+' "
                        "(bf16+channels_last); the loop baseline runs with the default")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads in every process")
    p.add_argument("--seed", type=int, default=0, help="seed of weights, images and views")
    p.add_argument("--same_process", action="store_true",
                   help="CUDA: measure every row in this process instead of a fresh one each (a GPU machine takes "
                        "~20 s to start one; peak memory is read from allocator statistics reset per row, so it "
                        "stays exact)")
    p.add_argument("--json", type=Path, default=None, metavar="OUT.json", help="also save the results as JSON")
    args = p.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: CUDA is not available")
    if args.same_process and args.device != "cuda":
        p.error("--same_process needs --device cuda: on CPU, memory freed by one row is reused by the next, so peak "
                "RSS per row is only exact in a fresh process")
    if args.amp != "none" and args.device != "cuda":
        p.error("--amp needs --device cuda")
    if "default" not in args.options:
        args.options = ["default", *args.options]
    if args.iters < 1 or args.warmup < 0:
        p.error("--iters must be >= 1 and --warmup >= 0")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    """Run the numerical check and every measurement, print the table, optionally save JSON."""
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    configs = [
        BenchConfig(
            dims=d, batch=args.batch2d if d == 2 else args.batch3d, size=args.size2d if d == 2 else args.size3d,
            widths=args.widths, device=args.device, amp=args.amp, threads=args.threads, iters=args.iters,
            warmup=args.warmup, seed=args.seed,
        )
        for d in args.dims
    ]
    env = environment(args.device)
    print(f"# COVER step benchmark: device={args.device}{' (' + env['gpu'] + ')' if 'gpu' in env else ''}, "
          f"CPU {env['cpu']} (fast bf16: {env['cpu_fast_bf16']}), "
          f"torch {env['torch']}, threads={env['torch_threads']}, widths={args.widths} {WIDTHS[args.widths]}, "
          f"amp={args.amp}, iters={args.iters}, warmup={args.warmup}, load average={env['load_average_start']}",
          flush=True)

    checks = []
    for cfg in configs:
        c = check_equivalence(cfg)
        checks.append(c)
        ok = c["same_weights"] and c["ddf_max_abs_diff"] <= 1e-3 * max(1.0, c["ddf_max_abs"])
        print(f"check {cfg.dims}D {cfg.shape}: identical weights={c['same_weights']}, "
              f"ddf_pred max|vec-loop|={c['ddf_max_abs_diff']:.2e} (max|ddf_pred|={c['ddf_max_abs']:.2f}), "
              f"MoV+VPA feature-grad max|vec-loop|={c['feature_grad_max_abs_diff']:.2e} "
              f"(max|grad|={c['feature_grad_max_abs']:.2e}){'' if ok else '  <-- WARNING: implementations differ'}",
              flush=True)
    gc.collect()

    results = []
    for cfg in configs:
        for part in PARTS:
            # the fast paths are options of the whole step; MoV+VPA alone is the same code under all of them
            rows = [(impl, "default") for impl in IMPLS]
            rows += [("vectorised", o) for o in args.options if o != "default"] if part == "step" else []
            for impl, option in rows:
                t0 = time.perf_counter()
                started = "" if args.same_process else " incl. process start"
                row_cfg = replace(cfg, option=option)
                r = measure(row_cfg, part, impl) if args.same_process else measure_in_subprocess(row_cfg, part, impl)
                _release(cfg.device)
                results.append(r)
                print(f"  {cfg.dims}D {part:8s} {impl:10s} {option:14s}: median {r['median_ms']:9.1f} ms, "
                      f"peak {r['peak_mb']:8.1f} MB ({time.perf_counter() - t0:.0f} s{started})",
                      file=sys.stderr, flush=True)

    methods = sorted({r["memory_method"] for r in results})
    where = "all rows in one process" if args.same_process else "one fresh spawned process per row"
    print(f"\nPeak memory method ({where}; measured over the first "
          f"iteration, above the memory in use just before it): {'; '.join(methods)}")
    env["load_average_end"] = _load_average()
    print("Timing: median wall-clock ms over the timed iterations, after 1 memory + warm-up iterations "
          f"(load average at end: {env['load_average_end']}; should be well below the thread count).\n")
    print(markdown_table(results))
    if args.json is not None:
        record = {"args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                  "environment": env, "memory_method": methods, "checks": checks, "results": results}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(record, indent=2))
        print(f"\nsaved {args.json}")


if __name__ == "__main__":
    main()
