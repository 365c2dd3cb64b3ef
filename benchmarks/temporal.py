"""Temporal COVER on synthetic sequences with known motion: field error and propagated Dice vs frame gap (issue 17).

Data: ``--train`` and ``--test`` synthetic 2D (``--dims 3``: 3D) sequences of ``--frames`` frames (``--size``² or
``--size``³ voxels): a smooth random texture with two ellipses or ellipsoids (labels 1 and 2), moved by a smooth
motion that drifts (translation and rotation growing with time) and breathes (a smooth random field scaled by
``sin(2 pi t / period)``). Frame ``t`` is ``base(p + u_t(p))``; the exact field between frames ``i`` and ``j``
(``frame_j(p) = frame_i(p + phi(p))``, the views' convention) comes from a fixed-point inversion, and each frame's
label is the base label moved with it.

Models (one tiny ``CoverNet``; same iterations, batch, learning rate and seed for each):

* ``no pretraining``: the randomly initialised network;
* ``frame-wise COVER``: each view pair from one frame (``temporal_share 0``): today's COVER on the frames;
* ``temporal COVER``: ``temporal_gap G``, ``temporal_share 0.5``, :class:`~monai_cover.losses.TemporalCoverLoss`;
* ``temporal, no smoothness``: the same without the bending energy (ablation of the self-supervised term);
* ``temporal, transitivity``: two-frame pairs trained by the transitivity constraint alone (no image matching);
* ``temporal, matching + transitivity``: image matching, bending energy and transitivity together;

and ``zero motion`` (the identity field) and ``exact field`` (the ground truth, the data's own upper bound).

Reported on the central ``--crop``² (³) of the test sequences (the input size of training) for gaps 1, 5 and 10: EPE
(voxels) of the predicted field between frames ``t`` and ``t + gap`` (mean over ``t`` and sequences), the Dice
(mean of the two structures) of frame 0's label carried to frame ``gap`` directly with one predicted field, and at
the longest gap the Dice of the label carried frame by frame.
With several ``--seeds`` (network initialisation and view draws; the sequences stay the same) the table shows the
mean over seeds and a second table the paired difference of each method to frame-wise COVER with its 95% t interval.
Each (seed, method) result is written to ``--out/seed<S>/<method>.json`` as soon as it is measured and reused by a
later run with the same ``--out`` (so an interrupted run resumes, and two processes with different ``--seeds`` can
share the machine's cores; a last run with all seeds writes the combined report). Writes ``results.json``,
``results.md`` and ``epe_vs_gap.png`` / ``dice_vs_gap.png`` into ``--out``. Run from the repository root::

    PYTHONPATH=. python benchmarks/temporal.py --out results/temporal --iterations 400
"""

from __future__ import annotations

import argparse
import json
import math
import re
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from monai.metrics import compute_dice

from monai_cover.engines import CoverPretrainStep
from monai_cover.errors import CoverError, first_line
from monai_cover.inferers import propagate_labels
from monai_cover.label_efficiency.splits import labeled_cases
from monai_cover.label_efficiency.stats import paired_difference
from monai_cover.losses import CoverLoss, TemporalCoverLoss
from monai_cover.networks import CoverNet
from monai_cover.networks.blocks import warp
from monai_cover.transforms import CoverViewSampler, SafeLoadImage
from monai_cover.transforms.functional import valid_mask
from monai_cover.visualize import save_curves

GAPS = (1, 5, 10)
#: synthetic view ranges of the sampler: the authors' 2D ones, or small ones (the sizes of motion in a sequence)
RANGES = {
    "authors": {},
    "small": {"rotate_deg": 15.0, "scale_range": (0.8, 1.2), "shear_deg": 5.0, "translate_frac": 0.1},
}
NET = {"channels": (16, 32, 32, 64, 64), "decoder_channels": (64, 32, 32, 16)}
#: the temporal methods' TemporalCoverLoss weights (the rest of the arguments at their defaults). The names predate
#: the bundle's default change: "temporal COVER" has the bending energy (weight 1), while cover_pretrain's
#: ``--temporal_gap`` now trains without it by default, i.e. as "temporal, no smoothness".
TEMPORAL_LOSSES = {
    "temporal COVER": {"lambda_smooth": 1.0},
    "temporal, no smoothness": {"lambda_smooth": 0.0},
    "temporal, transitivity": {"lambda_sim": 0.0, "lambda_smooth": 0.0, "lambda_trans": 1.0},
    "temporal, matching + transitivity": {"lambda_smooth": 1.0, "lambda_trans": 1.0},
}
METHODS = ["no pretraining", "frame-wise COVER", *TEMPORAL_LOSSES]


def _upsample(x: torch.Tensor, size: int) -> torch.Tensor:
    """``(1, C, c, c[, c])`` -> ``(1, C, size, size[, size])``: bicubic in 2D, trilinear in 3D."""
    dims = x.ndim - 2
    return F.interpolate(x, size=(size,) * dims, mode="bicubic" if dims == 2 else "trilinear", align_corners=True)


def _smooth_field(gen: torch.Generator, size: int, amplitude: float, coarse: int = 4, dims: int = 2) -> torch.Tensor:
    """``(d, S, S[, S])`` smooth random field with max norm ``amplitude`` voxels."""
    f = _upsample(torch.randn(1, dims, *([coarse] * dims), generator=gen), size)[0]
    return f * amplitude / f.norm(dim=0).max().clamp_min(1e-6)


def _rotation(angle: float, dims: int) -> torch.Tensor:
    """``(d, d)`` rotation by ``angle`` radians in the plane of the first two axes."""
    rot = torch.eye(dims)
    rot[:2, :2] = torch.tensor([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    return rot


def _synthetic_scene(gen: torch.Generator, pos: torch.Tensor, size: int
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A smooth random texture with a large (label 1) and a small (label 2) ellipse or ellipsoid on the ``big``
    grid of positions ``pos`` ``(d, *B)``: ``(base, label, beat)``, ``beat`` the large one's contraction field."""
    dims, big = pos.shape[0], pos.shape[1]
    col = (dims, *[1] * dims)  # a (d,) vector as a field
    tex = sum(_upsample(torch.randn(1, 1, *[c] * dims, generator=gen), big)[0, 0] / k
              for k, c in ((1, 6), (2, 12), (4, 24)))
    base, label = 0.3 * tex, torch.zeros([big] * dims, dtype=torch.long)
    for cls, (r_lo, r_hi) in ((1, (0.18, 0.26)), (2, (0.07, 0.11))):  # a large and a small structure
        centre = big / 2 + (torch.rand(dims, generator=gen) - 0.5) * size * 0.35
        radii = (r_lo + (r_hi - r_lo) * torch.rand(dims, generator=gen)) * size
        rot = _rotation(float(torch.rand(1, generator=gen)) * math.pi, dims)
        q = torch.einsum("ij,j...->i...", rot, pos - centre.view(col)) / radii.view(col)
        inside = (q**2).sum(0) <= 1
        base = torch.where(inside, base + (1.0 if cls == 1 else -0.8), base)
        label[inside] = cls
        if cls == 1:  # the beating structure: a contraction about its centre, fading out beyond its border
            beat = 0.25 * (pos - centre.view(col)) * torch.exp(-0.5 * (q**2).sum(0))
    return base, label, beat


def _beat(pos: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """The contraction field of ``region`` (a boolean map): about its centroid, fading out beyond the radius of the
    disc of its area."""
    dims = pos.shape[0]
    centre = pos[:, region].mean(1).view(dims, *[1] * dims)
    radius = (region.sum().float() / math.pi) ** 0.5
    return 0.25 * (pos - centre) * torch.exp(-0.5 * ((pos - centre) ** 2).sum(0) / radius**2)


def load_scene(image: str, masks: dict[int, list[str]], big: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A real radiograph as a sequence's scene: the image (scaled to [0, 1]) and its label map (each class the union
    of its mask files; later classes drawn over earlier ones), both resized to ``big``² and read with the project's
    loader (one line naming a missing or unreadable file)."""
    load = SafeLoadImage(image_only=True)

    def read(path: str, mode: str) -> torch.Tensor:
        x = torch.as_tensor(load(path), dtype=torch.float32)[None, None]
        return F.interpolate(x, size=(big, big), mode=mode)[0, 0]

    base = read(image, "area")
    label = torch.zeros(big, big, dtype=torch.long)
    for cls, paths in sorted(masks.items()):
        label[sum(read(p, "nearest") for p in paths) > 0] = cls
    return (base - base.min()) / (base.max() - base.min()).clamp_min(1e-6), label


def make_sequence(seed: int, frames: int, size: int, period: float, motion: str = "smooth", dims: int = 2,
                  scene: tuple[torch.Tensor, torch.Tensor] | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One sequence: frames ``(T, *S)`` in [0, 1], labels ``(T, *S)`` int64 and motion ``u`` ``(T, d, *S)``
    voxels (``frame_t(p) = base(p + u_t(p))``), ``S = (size,) * dims``, cut from a grid 1.5x larger so nothing
    enters from outside. In 3D the structures are ellipsoids and the rotation turns about the last axis.
    ``motion "beating"`` adds what global smooth deformations do not look like: the large structure contracts and
    expands on its own (by up to 25% of its size, period ``period / 2``) and every frame gets its own noise.
    ``scene``: a real image and its labels on the 1.5x grid (:func:`load_scene`) instead of the synthetic one; the
    structure labelled 2 (the heart) is then the one that beats."""
    gen = torch.Generator().manual_seed(seed)
    big = int(size * 1.5)
    pos = torch.stack(torch.meshgrid(*[torch.arange(big, dtype=torch.float32)] * dims, indexing="ij"))
    col = (dims, *[1] * dims)  # a (d,) vector as a field
    if scene is None:
        base, label, beat = _synthetic_scene(gen, pos, size)
    else:
        base, label = scene
        beat = _beat(pos, label == 2)
    drift = (torch.rand(dims, generator=gen) - 0.5) * 2 * 0.15 * size  # up to 15% of the size over the sequence
    theta = float((torch.rand(1, generator=gen) - 0.5) * 2 * math.radians(10))
    breathing = _smooth_field(gen, big, 0.1 * size, dims=dims)
    centre = (big - 1) / 2
    us = []
    for t in range(frames):
        s = t / max(frames - 1, 1)
        rel = pos - centre
        rot = torch.einsum("ij,j...->i...", _rotation(s * theta, dims), rel) - rel
        u_t = rot + s * drift.view(col) + math.sin(2 * math.pi * t / period) * breathing
        if motion == "beating":
            u_t = u_t + math.sin(4 * math.pi * t / period) * beat
        us.append(u_t)
    u = torch.stack(us)
    onehot = F.one_hot(label, 3).movedim(-1, 0).float()[None].expand(frames, *[-1] * (dims + 1))
    img = warp(base[None, None].expand(frames, 1, *[-1] * dims), u)[:, 0]
    lab = warp(onehot, u).argmax(1)
    lo = (big - size) // 2
    cut = (slice(lo, lo + size),) * dims
    img = img[(slice(None), *cut)]
    img = (img - img.min()) / (img.max() - img.min())
    if motion == "beating":
        img = img + 0.04 * torch.randn(img.shape, generator=gen)
    return img, lab[(slice(None), *cut)], u[(slice(None), slice(None), *cut)]


def exact_field(u_i: torch.Tensor, u_j: torch.Tensor, iterations: int = 40) -> torch.Tensor:
    """``phi`` with ``frame_j(p) = frame_i(p + phi(p))`` for frames ``base(p + u(p))``: the fixed point of
    ``phi = u_j - u_i(p + phi)`` (``(B, d, *S)`` voxels)."""
    phi = u_j - u_i
    for _ in range(iterations):
        phi = u_j - warp(u_i, phi)
    return phi


def dice(pred: torch.Tensor, target: torch.Tensor) -> float:
    """Mean Dice of labels 1 and 2 of ``(1, *S)`` maps."""
    oh = lambda x: F.one_hot(x.long()[0], 3).movedim(-1, 0)[None]  # noqa: E731
    return float(compute_dice(oh(pred), oh(target), include_background=False).nanmean())


def train(method: str, seqs: torch.Tensor, a: argparse.Namespace, seed: int) -> tuple[CoverNet, float]:
    """Pretrain a fresh network on the training sequences ``(N, T, *S)``; returns it and the seconds taken."""
    torch.manual_seed(seed)
    net = CoverNet(spatial_dims=a.dims, **NET)
    if method == "no pretraining":
        return net, 0.0
    share = 0.0 if method == "frame-wise COVER" else a.share
    loss = CoverLoss() if share == 0 else TemporalCoverLoss(**TEMPORAL_LOSSES[method])
    sampler = CoverViewSampler({"spatial_dims": a.dims, "crop_size": a.crop, **RANGES[a.ranges]},
                               pairs={"temporal_gap": a.gap, "temporal_share": share}, seed=seed)
    step = CoverPretrainStep(sampler, loss)
    opt = torch.optim.Adam(net.parameters(), lr=a.lr)
    pick = np.random.RandomState(seed)
    start = time.perf_counter()
    for it in range(1, a.iterations + 1):
        batch = seqs[torch.as_tensor(pick.randint(0, len(seqs), a.batch))]
        with torch.no_grad():
            views = sampler(batch)
        out = step.update(net, opt, views)
        if it % max(1, a.iterations // 10) == 0 or it == a.iterations:
            terms = " ".join(f"{k} {v:.4f}" for k, v in out.items() if k.startswith("loss"))
            took = time.perf_counter() - start
            print(f"  seed {seed} {method}: iteration {it}/{a.iterations} {terms} ({took:.0f} s)", flush=True)
    return net, time.perf_counter() - start


def _window(x: torch.Tensor, crop: int, dims: int) -> torch.Tensor:
    """The central ``crop``^d of ``(..., *S)`` (the last ``dims`` axes)."""
    lo = (x.shape[-1] - crop) // 2
    return x[(..., *[slice(lo, lo + crop)] * dims)]


@torch.no_grad()
def evaluate(predict, test: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]], crop: int) -> dict[str, float]:
    """EPE and direct Dice per gap, chained Dice at the longest gap, on the central ``crop``^d of the frames (the
    size the networks were trained at). ``predict(frames_i, frames_j, true)`` -> ``(B, d, *crop)`` fields
    (``true``: the exact ones, for the reference rows). Exact fields are found on the whole frame, then cut."""
    res: dict[str, list[float]] = {}
    longest = max(GAPS)
    for img, lab, u in test:
        dims = u.shape[1]
        img, lab = _window(img, crop, dims), _window(lab, crop, dims)
        for g in GAPS:
            n = img.shape[0] - g
            true = _window(exact_field(u[:n], u[g:]), crop, dims)
            pred = predict(img[:n, None], img[g:, None], true)
            mask = valid_mask(true)
            err = ((pred - true).norm(dim=1, keepdim=True) * mask).sum() / mask.sum()
            res.setdefault(f"epe_gap{g}", []).append(float(err))
            carried = propagate_labels(lab[:1], [pred[0]], 3)[-1]
            res.setdefault(f"dice_gap{g}", []).append(dice(carried, lab[g : g + 1]))
        true = _window(exact_field(u[:longest], u[1 : longest + 1]), crop, dims)
        steps = predict(img[:longest, None], img[1 : longest + 1, None], true)
        chained = propagate_labels(lab[:1], list(steps), 3)[-1]
        res.setdefault(f"dice_chained_gap{longest}", []).append(dice(chained, lab[longest : longest + 1]))
    return {k: float(np.mean(v)) for k, v in res.items()}


def _jsrt_scenes(root: Path, n: int, big: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The first ``n`` cases of the train split of a JSRT/SCR folder (the benchmark's ``jsrt_scr`` layout) as
    scenes (:func:`load_scene`): lungs label 1, heart label 2."""
    try:
        train, _, names = labeled_cases("jsrt_scr", root)
    except (CoverError, OSError, KeyError) as e:
        raise SystemExit(f"temporal.py: --images {root}: not a JSRT/SCR folder with images/, masks/ and split.json "
                         f"({first_line(e)})") from None
    classes = {1: ["left_lung", "right_lung"], 2: ["heart"]}
    missing = [m for v in classes.values() for m in v if m not in names]
    if missing:
        raise SystemExit(f"temporal.py: {root / 'split.json'}: no {', '.join(missing)} among its structures")
    if len(train) < n:
        raise SystemExit(f"temporal.py: {root / 'split.json'}: {len(train)} train cases, fewer than --train + --test "
                         f"= {n}")
    try:
        return [load_scene(c["image"], {k: [c["label"][names.index(m)] for m in v] for k, v in classes.items()}, big)
                for c in train[:n]]
    except CoverError as e:  # a missing or unreadable image or mask, named by the loader
        raise SystemExit(f"temporal.py: {e}") from None


def _slug(method: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", method.lower()).strip("_")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("results/temporal"))
    ap.add_argument("--train", type=int, default=24, help="training sequences")
    ap.add_argument("--test", type=int, default=8, help="test sequences")
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--dims", type=int, default=2, choices=[2, 3], help="2D+t or 3D+t sequences")
    ap.add_argument("--images", type=Path, default=None,
                    help="a JSRT/SCR folder (images/, masks/<structure>/, split.json): each sequence moves one real "
                         "radiograph of its train split (labels: lungs 1, heart 2) instead of a synthetic scene; "
                         "the held-out sequences are other train-split cases (for choosing settings), the test "
                         "split is never read")
    ap.add_argument("--size", type=int, default=48, help="frame side, voxels (a multiple of 16)")
    ap.add_argument("--period", type=float, default=12.0, help="breathing period, frames")
    ap.add_argument("--iterations", type=int, default=400)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--crop", type=int, default=32)
    ap.add_argument("--gap", type=int, default=10, help="largest training frame gap")
    ap.add_argument("--share", type=float, default=0.5, help="share of two-frame pairs in temporal training")
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--ranges", default="authors", choices=list(RANGES), help="synthetic view ranges")
    ap.add_argument("--motion", default="smooth", choices=["smooth", "beating"],
                    help="smooth: drift, rotation, breathing; beating: also a structure contracting on its own and "
                         "noise per frame")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0], help="network and view seeds (paired over methods)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--methods", nargs="+", default=METHODS, choices=METHODS)
    ap.add_argument("--report_only", action="store_true",
                    help="train nothing: report the (seed, method) results already in --out")
    a = ap.parse_args()
    if a.frames <= max(GAPS) or a.size % 16:
        raise SystemExit(f"temporal.py: needs --frames > {max(GAPS)} and --size a multiple of 16")
    if a.images and a.dims != 2:
        raise SystemExit("temporal.py: --images takes 2D radiographs (leave out --dims 3)")
    torch.set_num_threads(a.threads)
    a.out.mkdir(parents=True, exist_ok=True)
    _check_settings(a)
    scenes = _jsrt_scenes(a.images, a.train + a.test, int(a.size * 1.5)) if a.images else [None] * (a.train + a.test)
    data = [make_sequence(1000 + i, a.frames, a.size, a.period, a.motion, a.dims, scene)
            for i, scene in enumerate(scenes)]
    seqs = torch.stack([img for img, _, _ in data[: a.train]])
    test = data[a.train :]
    # the references: no motion, and the exact field (Dice below 1 only from carrying labels by resampling)
    refs = {"zero motion": evaluate(lambda x, y, true: torch.zeros_like(true), test, a.crop),
            "exact field": evaluate(lambda x, y, true: true, test, a.crop)}
    runs: dict[str, dict[int, dict]] = {}
    for seed in a.seeds:
        for method in a.methods:
            path = a.out / f"seed{seed}" / f"{_slug(method)}.json"
            if path.exists():  # measured by an earlier or a parallel run with the same --out
                print(f"seed {seed} {method}: reusing {path}", flush=True)
            elif a.report_only:
                print(f"seed {seed} {method}: not measured, left out of the report", flush=True)
                continue
            else:
                net, secs = train(method, seqs, a, seed)
                net.eval()
                metrics = evaluate(lambda x, y, true, net=net: net(x, y)[0], test, a.crop)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps({"metrics": metrics, "seconds": secs}, indent=1))
                print(f"seed {seed} {method}: {metrics}", flush=True)
            runs.setdefault(method, {})[seed] = json.loads(path.read_text())
    if not runs:
        raise SystemExit(f"temporal.py: no results in {a.out} for seeds {a.seeds} (run without --report_only first)")
    _report(a, refs, runs)


#: arguments that do not change a (seed, method) result: they may differ between runs sharing --out
_FREE = {"out", "seeds", "methods", "threads", "report_only"}


def _check_settings(a: argparse.Namespace) -> None:
    """Kept results are reused only by runs with the same data and training settings (``--out/settings.json``);
    another setting stops in one line instead of mixing results of different settings in one table."""
    path = a.out / "settings.json"
    mine = {k: str(v) for k, v in vars(a).items() if k not in _FREE}
    if path.exists():
        kept = json.loads(path.read_text())
        changed = sorted(k for k in mine.keys() | kept.keys() if mine.get(k) != kept.get(k))
        if changed:
            raise SystemExit(f"temporal.py: {a.out} holds results of other settings ({', '.join(changed)}: "
                             f"{', '.join(str(kept.get(k)) for k in changed)}); use another --out or the same settings")
    else:
        path.write_text(json.dumps(mine, indent=1))


def _columns() -> list[str]:
    return [f"epe_gap{g}" for g in GAPS] + [f"dice_gap{g}" for g in GAPS] + [f"dice_chained_gap{max(GAPS)}"]


def _report(a: argparse.Namespace, refs: dict[str, dict[str, float]], runs: dict[str, dict[int, dict]]) -> None:
    longest, cols = max(GAPS), _columns()
    fmt = lambda k, v: f"{v:.2f}" if k.startswith("epe") else f"{v:.3f}"  # noqa: E731
    head = ("| model | seeds | pretraining s | " + " | ".join(f"EPE gap {g}" for g in GAPS) + " | "
            + " | ".join(f"Dice gap {g}" for g in GAPS) + f" | Dice chained {longest} |")
    seeds = ", ".join(map(str, a.seeds))
    power = "²" if a.dims == 2 else "³"
    source = (f"Sequences of JSRT train-split radiographs ({a.images}; labels lungs and heart) with synthetic motion: "
              f"{a.train} train / {a.test} held out (train-split cases too)" if a.images else
              f"Synthetic sequences: {a.train} train / {a.test} test")
    lines = [f"{source}, {a.frames} frames of {a.size}{power}, "
             f"{a.motion} motion, {a.iterations} iterations of batch {a.batch} ({a.crop}{power} crops, {a.ranges} view "
             "ranges, gaps up to "
             f"{a.gap}, temporal share {a.share}), lr {a.lr}, seeds {seeds} (models: mean over seeds). EPE in voxels "
             "(lower is better), Dice of frame 0's label carried to frame `gap` (mean of the two structures).", "",
             head, "|---|---|---:|" + "---:|" * (2 * len(GAPS) + 1)]
    mean = {name: {k: float(np.mean([r["metrics"][k] for r in by_seed.values()])) for k in cols}
            for name, by_seed in runs.items()}
    for name, r in {**refs, **mean}.items():
        secs = f"{np.mean([v['seconds'] for v in runs[name].values()]):.0f}" if name in runs else "-"
        used = ", ".join(map(str, sorted(runs[name]))) if name in runs else "-"
        lines.append(f"| {name} | {used} | {secs} | " + " | ".join(fmt(k, r[k]) for k in cols) + " |")
    base = "frame-wise COVER"
    if len(a.seeds) > 1 and base in runs:
        lines += ["", f"Paired difference to {base} over seeds (mean [95% t interval]; EPE: negative is better, Dice: "
                  "positive is better; **bold** where the interval excludes 0):", "",
                  "| model | seeds | " + " | ".join(f"Δ EPE gap {g}" for g in GAPS) + " | "
                  + " | ".join(f"Δ Dice gap {g}" for g in GAPS) + f" | Δ Dice chained {longest} |",
                  "|---|---:|" + "---:|" * (2 * len(GAPS) + 1)]
        for name, by_seed in runs.items():
            common = sorted(set(by_seed) & set(runs[base]))
            if name == base or len(common) < 2:
                continue
            cells = []
            for k in cols:
                d = paired_difference([by_seed[s]["metrics"][k] for s in common],
                                      [runs[base][s]["metrics"][k] for s in common])
                scale = 1.0 if k.startswith("epe") else 100.0  # Dice in points
                text = f"{d['mean'] * scale:+.2f} [{d['low'] * scale:+.2f}, {d['high'] * scale:+.2f}]"
                cells.append(f"**{text}**" if d["low"] > 0 or d["high"] < 0 else text)
            lines.append(f"| {name} | {len(common)} | " + " | ".join(cells) + " |")
        lines.append("")
        lines.append("Dice differences in points (x100).")
    text = "\n".join(lines) + "\n"
    print("\n" + text)
    (a.out / "results.md").write_text(text)
    (a.out / "results.json").write_text(json.dumps({"args": {k: str(v) for k, v in vars(a).items()},
                                                    "references": refs, "runs": runs}, indent=1))
    models = {k: v for k, v in {**refs, **mean}.items() if k != "exact field"}
    save_curves(a.out / "epe_vs_gap.png", list(GAPS), {k: [v[f"epe_gap{g}"] for g in GAPS] for k, v in models.items()},
                "frame gap", "EPE (voxels)", "field error between frames t and t + gap")
    save_curves(a.out / "dice_vs_gap.png", list(GAPS),
                {k: [v[f"dice_gap{g}"] for g in GAPS] for k, v in {**refs, **mean}.items()},
                "frame gap", "Dice", "frame 0's label carried to frame gap")


if __name__ == "__main__":
    main()
