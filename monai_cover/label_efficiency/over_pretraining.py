"""``python -m monai_cover.label_efficiency.over_pretraining --task jsrt_scr --mode headline --out OUT``

Why one pretraining's features are better than another's: the linear probe and label transfer of each pretrained
backbone *per decoder level*, at each snapshot the benchmark kept during pretraining (the task's
``pretrain_snapshots``, e.g. 10/25/50/100% of the iterations), beside the held-out endpoint error at that point. Does
feature quality rise as the field gets better, and at which levels? A random backbone (the scratch backbone of the
same pretraining seed) is the common starting point, iteration 0.

Reads the benchmark's output folder ``OUT`` (``pretrain/<method>/p<seed>/done.json`` with its snapshots, which must
still hold their weights: run it where the benchmark ran) and writes ``OUT/over_pretraining/``: ``results.json``,
``results.md`` and ``over_pretraining.png``. Each probe is the benchmark's probe (:meth:`BenchmarkRunner.seg_run`,
its steps, fraction and holdout) with ``head_levels`` one level; each transfer the benchmark's label transfer with
``transfer_levels`` one level, from one atlas. Rerunning reuses finished runs.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

from monai_cover.errors import BadInputError
from monai_cover.label_efficiency.cli import run_study, study_parser
from monai_cover.label_efficiency.runner import BenchmarkRunner
from monai_cover.label_efficiency.tasks import load_task
from monai_cover.utils import atomic_write

__all__ = ["main", "write_report"]

EVALUATIONS = ("probe", "transfer")


def _points(out: Path, method: str, pseed: int) -> list[dict]:
    """The snapshots of ``method``'s pretraining ``pseed``: ``{iteration, share, val_epe, val_epe_zero, weights}``."""
    done = out / "pretrain" / method / f"p{pseed}" / "done.json"
    if not done.is_file():
        raise BadInputError(f"{done}: no finished pretraining of {method} (seed {pseed}) here; run the benchmark first")
    rec = json.loads(done.read_text())
    if not rec.get("snapshots"):
        raise BadInputError(f"{done}: pretrained without snapshots (the task's pretrain_snapshots)")
    points = []
    for snap in rec["snapshots"]:
        weights = out / snap["weights"]
        if not weights.is_file():
            raise BadInputError(f"{weights}: snapshot weights missing (they stay where the benchmark ran)")
        points.append({**snap, "weights": weights, "share": snap["iteration"] / rec["iterations"]})
    return points


def write_report(folder: Path, doc: dict) -> Path:
    """``results.json``, ``results.md`` and ``over_pretraining.png`` in ``folder``; returns the ``.md``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    atomic_write(folder / "results.json", lambda tmp: Path(tmp).write_text(json.dumps(doc, indent=1, default=str)))
    runs, levels, methods = doc["runs"], doc["levels"], doc["methods"]
    evals = [e for e in EVALUATIONS if any(r["eval"] == e for r in runs)]
    dice = {(r["eval"], r["method"], r["iteration"], r["level"]): r["dice"] for r in runs}
    epe = {(p["method"], p["iteration"]): p for p in doc["points"]}
    lines = [f"# Feature quality over pretraining: {doc['task']}", "", f"Command: `{doc['command']}`", "",
             f"Test Dice (%) per decoder level (0 = finest) of a linear probe ({doc['probe_steps']} steps, "
             f"{100 * doc['fraction']:g}% labels) and of label transfer from one atlas, label seed {doc['seed']}; "
             "iteration 0 is the random backbone both start from.", ""]
    for e in evals:
        lines += [f"## {e}", "", "| method | iteration | held-out EPE (zero motion) | " +
                  " | ".join(f"level {lv}" for lv in levels) + " |", "|---|---|---|" + "---|" * len(levels)]
        for m in methods:
            for it in sorted({k[2] for k in dice if k[0] == e and k[1] in (m, "scratch")}):
                src = "scratch" if it == 0 else m
                p = epe.get((m, it))
                cell = "-" if p is None or p.get("val_epe") is None else f"{p['val_epe']:.1f} ({p['val_epe_zero']:.1f})"
                vals = [dice.get((e, src, it, lv)) for lv in levels]
                lines.append(f"| {m} | {it} | {cell} | " +
                             " | ".join("-" if v is None else f"{100 * v:.1f}" for v in vals) + " |")
        lines.append("")
    md = folder / "results.md"
    md.write_text("\n".join(lines) + "\n")

    fig, axes = plt.subplots(1, len(evals) * len(methods) + 1, figsize=(4 * (len(evals) * len(methods) + 1), 3.4),
                             squeeze=False)
    axes = axes[0]
    for i, (e, m) in enumerate((e, m) for e in evals for m in methods):
        ax = axes[i]
        for lv in levels:
            its = sorted({k[2] for k in dice if k[0] == e and k[1] in (m, "scratch") and k[3] == lv})
            ys = [dice.get((e, "scratch" if it == 0 else m, it, lv)) for it in its]
            ax.plot(its, [None if y is None else 100 * y for y in ys], marker="o", ms=3, label=f"level {lv}")
        ax.set_title(f"{m}: {e}")
        ax.set_xlabel("pretraining iteration")
        ax.set_ylabel("test Dice (%)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    ax = axes[-1]
    for m in methods:
        pts = sorted((p["iteration"], p["val_epe"]) for p in doc["points"] if p["method"] == m and p.get("val_epe"))
        if pts:
            ax.plot(*zip(*pts), marker="o", ms=3, label=m)
    ax.set_title("held-out endpoint error")
    ax.set_xlabel("pretraining iteration")
    ax.set_ylabel("pixels / voxels")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(folder / "over_pretraining.png", dpi=110)
    plt.close(fig)
    return md


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = study_parser("over_pretraining", __doc__, mode="headline", out_help="the benchmark's output folder")
    ap.add_argument("--methods", nargs="+", default=["cover", "pixel_contrast"], help="pretraining methods")
    ap.add_argument("--pretrain_seed", type=int, default=0, help="which pretraining")
    ap.add_argument("--seed", type=int, default=0, help="label seed of the probes and the atlas")
    ap.add_argument("--levels", nargs="+", type=int, default=None, help="decoder levels (default: all)")
    ap.add_argument("--evaluations", nargs="+", choices=EVALUATIONS, default=list(EVALUATIONS))
    a = ap.parse_args(argv)

    def work() -> Path:
        task = load_task(a.task, a.mode, a.data)
        out = Path(a.out)
        folder = out / "over_pretraining"
        runner = BenchmarkRunner(task, out, log=lambda m: print(m, flush=True))
        levels = a.levels if a.levels is not None else list(range(len(task.common.get("channels", [0] * 5))))
        fraction, seed, pseed = task.fractions[0], a.seed, a.pretrain_seed
        points = {m: _points(out, m, pseed) for m in a.methods}
        dl, dl_file = runner.fraction_datalist(fraction, seed)
        # iteration 0: the random backbone of this pretraining seed (scratch's), shared by every method
        todo = [("scratch", 0, None)] + [(m, p["iteration"], p["weights"]) for m in a.methods for p in points[m]]
        runs = []
        total = len(todo) * len(levels) * len(a.evaluations)
        for method, it, weights in todo:
            for lv in levels:
                about = {"method": method, "iteration": it, "level": lv}
                if "probe" in a.evaluations:
                    run_dir = folder / "probe" / method / f"p{pseed}_i{it}_l{lv}_s{seed}"
                    rec = runner.seg_run("probe", dl, dl_file, run_dir, task.probe_steps, seed, weights, pseed,
                                         {**about, "fraction": fraction}, extra={"head_levels": [lv]})
                    runs.append(rec)
                    print(f"[{len(runs)}/{total}] probe    {method:>14} iteration {it:5d} level {lv}: test Dice "
                          f"{100 * rec['dice']:.1f}", flush=True)
                if "transfer" in a.evaluations:
                    (rec,) = runner.transfer(method, pseed, seed, weights, atlas_counts=[1],
                                             run_root=folder / "transfer" / method / f"i{it}_l{lv}", about=about,
                                             extra={"transfer_levels": [lv]})
                    runs.append(rec)
                    print(f"[{len(runs)}/{total}] transfer {method:>14} iteration {it:5d} level {lv}: test Dice "
                          f"{100 * rec['dice']:.1f}", flush=True)
        doc = {"task": task.name, "mode": task.mode,
               "command": "python -m monai_cover.label_efficiency.over_pretraining " + shlex.join(argv),
               "methods": a.methods, "levels": levels, "fraction": fraction, "seed": seed, "pretrain_seed": pseed,
               "probe_steps": task.probe_steps,
               "points": [{"method": m, **{k: v for k, v in p.items() if k != "weights"}} for m in a.methods
                          for p in points[m]],
               "runs": runs}
        return write_report(folder, doc)

    return run_study("over_pretraining", work)


if __name__ == "__main__":
    sys.exit(main())
