"""``python -m monai_cover.label_efficiency.strategies --task jsrt_scr --mode headline --backbone B --steps N --out O``

Which images to label first, measured as the MONAI Label loop uses it: MONAI Label's ``random`` next-sample strategy
against ``cover_farthest`` (the unlabeled image whose nearest labeled image is farthest in the COVER backbone's
pooled features, :func:`monai_cover.labeling.farthest_unlabeled`).

For each label seed both strategies start from the same randomly drawn first image and then add one image at a time
from the task's train pool (the train split minus its fixed validation holdout), so the sets of each strategy are
nested. Each set of ``--sizes`` images fine-tunes cover_seg from the same backbone for the same number of steps
(the benchmark's protocol, :meth:`~monai_cover.label_efficiency.runner.BenchmarkRunner.seg_run`: validation on the
holdout, the best checkpoint tested on ``test``). The report gives test Dice per strategy and size and the paired
difference over label seeds with its t 95% interval: ``results.json``, ``results.md`` and ``dice_by_strategy.png``.
Rerunning the command reuses finished runs and resumes an interrupted one.
"""

from __future__ import annotations

import json
import random
import shlex
import sys
import time
from pathlib import Path

from monai_cover.errors import BadInputError
from monai_cover.label_efficiency.cli import add_fine_tuning, backbone_file, pin_backbone, run_study, study_parser
from monai_cover.label_efficiency.runner import BenchmarkRunner
from monai_cover.label_efficiency.splits import fraction_datalist
from monai_cover.label_efficiency.stats import paired_difference
from monai_cover.label_efficiency.tasks import load_task
from monai_cover.utils import atomic_write

__all__ = ["STRATEGIES", "choose", "main"]

#: the compared next-sample strategies, reference first
STRATEGIES = ("random", "cover_farthest")


def choose(strategy: str, pool: list[str], features: dict, count: int, seed: int) -> list[str]:
    """The first ``count`` images of ``pool`` that ``strategy`` asks to label, in order.

    Both strategies start from the first image of ``pool`` shuffled with ``seed``; ``random`` goes on in that order,
    ``cover_farthest`` adds the image farthest from those chosen so far (``features``: ``{image: descriptor}``; images
    without a descriptor are never chosen by it).
    """
    from monai_cover.labeling import farthest_unlabeled

    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    if count > len(pool):
        raise BadInputError(f"cannot choose {count} images from a pool of {len(pool)}")
    order = pool[:]
    random.Random(seed).shuffle(order)
    if strategy == "random":
        return order[:count]
    candidates = {i: features[i] for i in pool if i in features}
    chosen = [order[0]]
    while len(chosen) < count:
        chosen.append(farthest_unlabeled(candidates, chosen)[0])
    return chosen


def _summary(records: list[dict], sizes: list[int]) -> list[dict]:
    """Per size: each strategy's mean test Dice and the paired difference cover_farthest - random over seeds."""
    rows = []
    for n in sizes:
        by = {s: {r["seed"]: r["dice"] for r in records if r["strategy"] == s and r["labeled"] == n}
              for s in STRATEGIES}
        seeds = sorted(set(by["random"]) & set(by["cover_farthest"]))
        row = {"labeled": n, "seeds": seeds,
               **{s: sum(by[s].values()) / len(by[s]) if by[s] else None for s in STRATEGIES}}
        if seeds:
            row["difference"] = paired_difference([by["cover_farthest"][k] for k in seeds],
                                                  [by["random"][k] for k in seeds])
        rows.append(row)
    return rows


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def write_report(out: Path, doc: dict) -> Path:
    """``results.json``, ``results.md`` and ``dice_by_strategy.png`` in ``out`` from ``doc``; returns the ``.md``."""
    from monai_cover.visualize import save_points

    atomic_write(out / "results.json", lambda tmp: Path(tmp).write_text(json.dumps(doc, indent=1)))
    lines = [f"# Next-sample strategies: {doc['task']}", "",
             f"Command: `{doc['command']}`", "",
             f"Backbone: `{doc['backbone']}` (sha1 {doc['backbone_sha1'][:12]}); every run fine-tunes from it for "
             f"{doc['steps']} steps; test Dice of the best validation checkpoint, in %.", "",
             "| labeled images | random | cover_farthest | cover_farthest - random [95% CI] | label seeds |",
             "|---|---|---|---|---|"]
    for row in doc["summary"]:
        d = row.get("difference")
        diff = "-" if d is None else (f"{100 * d['mean']:+.1f} [{100 * d['low']:+.1f}, {100 * d['high']:+.1f}]"
                                      if d["n"] > 1 else f"{100 * d['mean']:+.1f} (one seed)")
        lines.append(f"| {row['labeled']} | {_pct(row['random'])} | {_pct(row['cover_farthest'])} | {diff} | "
                     f"{len(row['seeds'])} |")
    md = out / "results.md"
    md.write_text("\n".join(lines) + "\n")
    sizes = [str(r["labeled"]) for r in doc["summary"]]
    save_points(out / "dice_by_strategy.png", sizes,
                {s: [None if r[s] is None else 100 * r[s] for r in doc["summary"]] for s in STRATEGIES},
                ylabel="test Dice (%)", title=f"{doc['task']}: labeled images chosen by")
    return md


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = study_parser("strategies", __doc__)
    add_fine_tuning(ap)
    ap.add_argument("--sizes", nargs="+", type=int, default=[4, 8, 16], help="labeled images")
    a = ap.parse_args(argv)

    def work() -> Path:
        from monai_cover.labeling import FeatureIndex

        task = load_task(a.task, a.mode, a.data, a.settings)
        backbone = backbone_file(a.backbone)
        sha1 = pin_backbone(Path(a.out), backbone)
        out = Path(a.out)
        runner = BenchmarkRunner(task, out, log=lambda m: print(m, flush=True))
        holdout = fraction_datalist(runner.train, runner.test, 1.0, 0, task.num_val)
        cases = {c["image"]: c for c in holdout["training"]}
        pool = sorted(cases)
        print(f"features of {len(pool)} pool images ...", flush=True)
        features = FeatureIndex(backbone, out / "features").features({i: i for i in pool})
        todo = [(seed, n, s) for seed in a.seeds for n in sorted(a.sizes) for s in STRATEGIES]
        records, start = [], time.time()
        for k, (seed, n, strategy) in enumerate(todo, 1):
            chosen = choose(strategy, pool, features, n, seed)
            dl = {"training": [cases[i] for i in chosen], "validation": holdout["validation"], "test": runner.test}
            rec = runner.seg_run("finetune", dl, out / "datalists" / f"{strategy}_n{n:03d}_s{seed}.json",
                                 out / "finetune" / strategy / f"n{n:03d}_s{seed}", a.steps, seed, backbone, 0,
                                 {"method": "cover", "strategy": strategy, "labeled": n,
                                  "images": [Path(i).name for i in chosen]})
            records.append(rec)
            eta = (time.time() - start) / k * (len(todo) - k)
            print(f"[{k}/{len(todo)}] {strategy:>14} {n:3d} images seed {seed}: test Dice {100 * rec['dice']:.1f} "
                  f"(ETA {eta / 60:.0f} min)", flush=True)
        doc = {"task": task.name, "mode": task.mode,
               "command": "python -m monai_cover.label_efficiency.strategies " + shlex.join(argv),
               "backbone": str(backbone), "backbone_sha1": sha1, "steps": a.steps,
               "summary": _summary(records, sorted(a.sizes)), "runs": records}
        return write_report(out, doc)

    return run_study("strategies", work)


if __name__ == "__main__":
    sys.exit(main())
