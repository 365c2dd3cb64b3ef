"""Scale: start-up time, memory, throughput and disk of the pretraining data pipeline as the archive grows.

For synthetic archives (2D: PNG 512² radiograph-like images; 3D: NIfTI.gz 256x256x128 int16 CT-like volumes) of N
images, and each ``cache`` mode (``memory``, ``disk``, ``none``) and DataLoader ``num_workers``, this builds the
cover_pretrain bundle's own training DataLoader and view sampler from ``configs/train.json`` (so the measured
pipeline is the bundle's) in a fresh process and reports:

* ``start s``: seconds from building the dataset to the first batch of views (``memory`` decodes everything first);
* ``views/s``: views per second over the next ``--batches`` batches (loader + view generation, no model); compare
  with the model's step rate (``benchmarks/pipeline.py``: on this 2-core CPU one 2D step consumes ~0.5 views/s,
  a 3D one ~0.14), above it the pipeline keeps up;
* ``peak RSS MB``: peak resident memory of the process and its loader workers;
* ``cache MB``: disk used by the ``disk`` cache after the run; a second ``disk`` row (``reuse``) first fills the
  cache with every image (untimed), then measures a run that reads it.

Archives are generated once under ``--out`` and reused. Run from the repository root::

    PYTHONPATH=. python benchmarks/scale.py --kind 2d --sizes 100 1000 10000 --out results/scale
    PYTHONPATH=. python benchmarks/scale.py --kind 3d --sizes 10 50 200 --out results/scale
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHAPES = {"2d": (512, 512), "3d": (256, 256, 128)}
#: bundle settings per kind: the defaults' crops and batches
BUNDLE = {"2d": {"spatial_dims": 2, "batch_size": 4, "crop_size": 128},
          "3d": {"spatial_dims": 3, "batch_size": 2, "crop_size": 48}}


def smooth(shape: tuple[int, ...], seed: int) -> np.ndarray:
    """Smooth random structure in [0, 1] (coarse noise, linearly upsampled) plus fine noise."""
    import torch
    import torch.nn.functional as F

    gen = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 1, *[max(2, s // 32) for s in shape], generator=gen)
    img = F.interpolate(coarse, size=shape, mode="bilinear" if len(shape) == 2 else "trilinear")[0, 0]
    return (0.9 * img + 0.1 * torch.rand(shape, generator=gen)).numpy()


def archive(kind: str, n: int, out: Path) -> Path:
    """``out/archive_<kind>_<n>``: N synthetic images, generated once (a ``.done`` marker when complete)."""
    root = out / f"archive_{kind}_{n}"
    if (root / ".done").is_file():
        return root
    root.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    for i in range(n):
        if kind == "2d":
            from PIL import Image

            f = root / f"img_{i:06d}.png"
            if not f.is_file():
                Image.fromarray((smooth(SHAPES[kind], i) * 255).astype(np.uint8)).save(f)
        else:
            import nibabel as nib

            f = root / f"vol_{i:05d}.nii.gz"
            if not f.is_file():
                hu = (smooth(SHAPES[kind], i) * 2000 - 1000).astype(np.int16)
                nib.save(nib.Nifti1Image(hu, np.diag([0.8, 0.8, 2.0, 1.0])), f)
        if (i + 1) % max(1, n // 10) == 0:
            print(f"  generated {i + 1}/{n} {kind} images in {time.time() - t0:.0f} s", flush=True)
    (root / ".done").touch()
    return root


def _peak_rss_mb() -> float:
    self_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return (self_kb + children_kb) / 1024


def measure(kind: str, data: str, cache: str, workers: int, cache_dir: str, batches: int, fill: bool = False) -> dict:
    """One row, in a fresh process: the bundle's loader and sampler, timed to the first batch and over ``batches``;
    with ``fill`` the disk cache is first filled with every image (untimed), so the row measures a later run."""
    import torch
    from monai.bundle import ConfigParser

    torch.set_num_threads(1)
    parser = ConfigParser()
    parser.read_config(str(REPO / "bundles" / "cover_pretrain" / "configs" / "train.json"))
    parser.update({"bundle_root": str(Path(cache_dir).parent), "dataset_dir": data, "cache": cache,
                   "cache_dir": cache_dir, "num_workers": workers, "num_val": 2, **BUNDLE[kind]})
    if fill:
        dataset = parser.get_parsed_content("train#dataset")
        for i in range(len(dataset)):
            dataset[i]
        parser.ref_resolver.reset()  # a fresh loader below, as a new run builds
    t0 = time.perf_counter()
    loader = parser.get_parsed_content("train#dataloader")
    sampler = parser.get_parsed_content("train#sampler")
    it = iter(loader)
    with torch.no_grad():
        sampler(next(it)["image"])
    start = time.perf_counter() - t0
    views, t1 = 0, time.perf_counter()
    for _ in range(batches):
        try:
            batch = next(it)
        except StopIteration:
            it = iter(loader)
            batch = next(it)
        with torch.no_grad():
            views += 2 * sampler(batch["image"])["view_a"].shape[0]
    rate = views / (time.perf_counter() - t1)
    del it, loader
    disk = sum(f.stat().st_size for f in Path(cache_dir).rglob("*") if f.is_file()) if cache == "disk" else 0
    return {"start_s": start, "views_per_s": rate, "peak_rss_mb": _peak_rss_mb(), "cache_mb": disk / 2**20}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kind", choices=tuple(SHAPES), required=True)
    ap.add_argument("--sizes", type=int, nargs="+", required=True, help="archive sizes N")
    ap.add_argument("--modes", nargs="+", default=["memory", "disk", "none"])
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    ap.add_argument("--batches", type=int, default=20, help="batches timed after the first")
    ap.add_argument("--out", type=Path, default=Path("results/scale"))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    rows = []
    for n in args.sizes:
        data = archive(args.kind, n, args.out)
        size_mb = sum(f.stat().st_size for f in data.iterdir()) / 2**20
        for workers in args.workers:
            for mode in args.modes:
                cache_dir = args.out / f"run_{args.kind}_{n}" / "cache"
                shutil.rmtree(cache_dir, ignore_errors=True)
                for label in (["", "reuse"] if mode == "disk" else [""]):
                    with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as pool:
                        r = pool.submit(measure, args.kind, str(data), mode, workers, str(cache_dir),
                                        args.batches, label == "reuse").result()
                    rows.append({"kind": args.kind, "n": n, "archive_mb": size_mb, "cache": mode + (" " + label
                                 if label else ""), "workers": workers, **r})
                    print(f"  N={n} {mode} {label} workers={workers}: first batch {r['start_s']:.1f} s, "
                          f"{r['views_per_s']:.1f} views/s, peak RSS {r['peak_rss_mb']:.0f} MB", flush=True)
                shutil.rmtree(cache_dir, ignore_errors=True)
    print(f"\nload average at the end {os.getloadavg()[0]:.2f}\n")
    print("| kind | N (archive MB) | cache | workers | start s | views/s | peak RSS MB | cache MB |")
    print("|---|---|---|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['kind']} | {r['n']} ({r['archive_mb']:.0f}) | {r['cache']} | {r['workers']} | "
              f"{r['start_s']:.1f} | {r['views_per_s']:.1f} | {r['peak_rss_mb']:.0f} | {r['cache_mb']:.0f} |")
    (args.out / f"scale_{args.kind}.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
