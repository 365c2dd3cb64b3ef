"""Is the data pipeline a bottleneck? Views per second of the pipeline vs views per second consumed by the model.

The pipeline is what feeds one training step: reading the cached, pre-processed images from a DataLoader
(CacheDataset, as in the bundle) plus generating the two views for the batch on the training device
(``CoverViewSampler``). The model side is one full pretraining step (forward, loss, backward, Adam) of the
bundle's default network. Both are measured in the same run, at the bundle's default 2D and 3D settings.

    python benchmarks/pipeline.py                    # CPU, both settings
    python benchmarks/pipeline.py --device cuda --dims 3

``ratio = pipeline views/s / model views/s``; above 1 the pipeline keeps up (the model is the bottleneck).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from monai.data import CacheDataset, DataLoader

from monai_cover.losses import CoverLoss
from monai_cover.networks import CoverNet
from monai_cover.transforms import CoverViewSampler

SETTINGS = {2: {"batch": 4, "crop": 128}, 3: {"batch": 2, "crop": 48}}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _median_time(fn, iters: int, warmup: int, device: torch.device) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iters):
        _sync(device)
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench(dims: int, device: torch.device, iters: int, warmup: int, widths: str) -> dict:
    batch, crop = SETTINGS[dims]["batch"], SETTINGS[dims]["crop"]
    load = int(round(crop * 1.5))
    items = [{"image": torch.rand(1, *([load] * dims))} for _ in range(4 * batch)]
    ds = CacheDataset(items, transform=None, progress=False)
    loader = DataLoader(ds, batch_size=batch, shuffle=True, num_workers=0, drop_last=True)
    sampler = CoverViewSampler({"spatial_dims": dims, "crop_size": crop})
    sampler.set_random_state(0)
    it = iter(loader)

    def pipeline():
        nonlocal it
        try:
            batchdata = next(it)
        except StopIteration:
            it = iter(loader)
            batchdata = next(it)
        with torch.no_grad():
            return sampler(batchdata["image"].to(device))

    chans = {"full": (32, 64, 128, 256, 512), "half": (16, 32, 64, 128, 256)}[widths]
    net = CoverNet(dims, channels=chans, decoder_channels=chans[-2::-1]).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    loss_fn = CoverLoss()
    views = pipeline()

    def step():
        opt.zero_grad(set_to_none=True)
        ddf_pred, fa, fb = net(views["view_a"], views["view_b"])
        loss_fn(ddf_pred, fa, fb, views["ddf"], views["mask"])["loss"].backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()

    t_pipe = _median_time(pipeline, iters * 3, warmup, device)
    t_step = _median_time(step, iters, warmup, device)
    return {"dims": dims, "batch": batch, "crop": crop, "load": load, "pipeline_views_s": batch / t_pipe,
            "model_views_s": batch / t_step, "ratio": t_step / t_pipe}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dims", type=int, nargs="+", default=[2, 3])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--widths", choices=["full", "half"], default="full")
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    rows = [bench(d, device, args.iters, args.warmup, args.widths) for d in args.dims]
    print(f"device: {device}, widths: {args.widths}, threads: {torch.get_num_threads()}")
    print("| dims | batch | crop (load) | pipeline views/s | model views/s | ratio pipeline/model |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['dims']}D | {r['batch']} | {r['crop']} ({r['load']}) | {r['pipeline_views_s']:.1f} | "
              f"{r['model_views_s']:.2f} | {r['ratio']:.1f}x |")


if __name__ == "__main__":
    main()
