"""Benchmark outputs: ``results.json`` (every run), ``results.md`` (mean +- std tables), ``dice_vs_fraction.png``."""

from __future__ import annotations

import json
import math
from pathlib import Path

from monai_cover.benchmark.tasks import Task
from monai_cover.handlers.plots import save_curves

__all__ = ["summarise", "write_report"]

_NAMES = {"cover": "COVER", "consistency": "consistency only (L_con, no L_vec)",
          "pixel_contrast": "pixel InfoNCE (binary contrast)", "scratch": "scratch (no pretraining)"}


def _stats(values: list[float]) -> dict:
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return {"mean": mean, "std": std, "n": n}


def summarise(records: list[dict]) -> dict:
    """``{method: {fraction: {"mean", "std", "n", "per_class": {name: mean}, "val_mean", "val_std"}}}`` over seeds.

    Dice in [0, 1]; ``mean``/``std`` are on the test split, ``val_*`` on the validation holdout inside ``train``.
    """
    out: dict = {}
    for r in records:
        out.setdefault(r["method"], {}).setdefault(str(r["fraction"]), []).append(r)
    summary = {}
    for method, by_frac in out.items():
        summary[method] = {}
        for frac, rs in by_frac.items():
            s = _stats([r["dice"] for r in rs])
            s["per_class"] = {k: sum(r["dice_per_class"][k] for r in rs) / len(rs) for k in rs[0]["dice_per_class"]}
            s["num_train"] = rs[0]["num_train"]
            vals = [r["val_dice"] for r in rs if r.get("val_dice") is not None]
            if vals:  # Dice on the fixed holdout inside ``train``: the number to tune on
                v = _stats(vals)
                s["val_mean"], s["val_std"] = v["mean"], v["std"]
            summary[method][frac] = s
    return summary


def _budget(requested: int, runs, key: str = "iterations") -> str:
    """``requested``, and what the runs did when whole epochs made it more (e.g. ``150 requested, 175 run``)."""
    done = sorted({int(r[key]) for r in runs if key in r})
    if not done or done == [requested]:
        return str(requested)
    return f"{requested} requested, {done[0] if len(done) == 1 else f'{done[0]}-{done[-1]}'} run"


def task_budget(task: Task) -> dict:
    """The task's budget as ``results.json`` records it: iterations, steps, seeds and every bundle override."""
    return {"pretrain_iterations": task.pretrain_iterations, "finetune_steps": task.finetune_steps,
            "seeds": task.seeds, "common": task.common, "pretrain": task.pretrain, "seg": task.seg}


def write_report(out_dir: str | Path, task: Task, records: list[dict], pretrain: dict, command: str) -> Path:
    """Write the three outputs into ``out_dir``; returns the markdown path."""
    out = Path(out_dir)
    # the task's method order, whatever order the pretraining jobs finished (or were saved) in
    pretrain = {m: pretrain[m] for m in task.methods if m in pretrain}
    summary = summarise(records)
    methods = [m for m in task.methods if m in summary]
    fracs = [str(f) for f in task.fractions if any(str(f) in summary[m] for m in methods)]
    doc = {"task": task.name, "title": task.title, "mode": task.mode, "command": command,
           "budget": task_budget(task),
           "pretrain": pretrain, "summary": summary, "runs": records}
    (out / "results.json").write_text(json.dumps(doc, indent=1))

    def cell(m: str, f: str, key: str = "") -> str:
        s = summary[m].get(f)
        if s is None or f"{key}mean" not in s:
            return ""
        best = max(summary[k][f].get(f"{key}mean", -1) for k in methods if f in summary[k])
        text = f"{100 * s[key + 'mean']:.1f} ± {100 * s[key + 'std']:.1f}"
        return f"**{text}**" if s[key + "mean"] == best else text

    n_train = {f: next(summary[m][f]["num_train"] for m in methods if f in summary[m]) for f in fracs}
    seeds = sorted({r["seed"] for r in records})
    lines = [f"# Benchmark: {task.title or task.name} ({task.mode} mode)", "",
             f"Command: `{command}`", "",
             f"Test-set mean Dice (%), mean ± std over {len(seeds)} seed(s) {seeds} (each seed: its own labeled "
             f"subset and initialisation). Pretraining: {_budget(task.pretrain_iterations, pretrain.values())} "
             f"iterations per method; fine-tuning: {_budget(task.finetune_steps, records, 'steps')} steps for every "
             "method, scratch included (runs end on whole epochs).", "",
             "| method | " + " | ".join(f"{float(f):.0%} ({n_train[f]} cases)" for f in fracs) + " |",
             "|---|" + "---|" * len(fracs)]
    lines += [f"| {_NAMES.get(m, m)} | " + " | ".join(cell(m, f) for f in fracs) + " |" for m in methods]
    if any("val_mean" in s for by_frac in summary.values() for s in by_frac.values()):
        lines += ["", f"Validation Dice (%) at the end of fine-tuning, on the fixed {task.num_val}-case holdout inside "
                  "`train` (the only numbers to tune on):", "",
                  "| method | " + " | ".join(f"{float(f):.0%}" for f in fracs) + " |", "|---|" + "---|" * len(fracs)]
        lines += [f"| {_NAMES.get(m, m)} | " + " | ".join(cell(m, f, "val_") for f in fracs) + " |" for m in methods]
    classes = list(next(iter(next(iter(summary.values())).values()))["per_class"])
    for f in fracs:
        lines += ["", f"Per structure at {float(f):.0%} labels (Dice %, mean over seeds):", "",
                  "| method | " + " | ".join(classes) + " |", "|---|" + "---|" * len(classes)]
        lines += [f"| {_NAMES.get(m, m)} | " + " | ".join(f"{100 * summary[m][f]['per_class'][c]:.1f}"
                                                         for c in classes) + " |" for m in methods if f in summary[m]]
    if pretrain:
        lines += ["", "Pretraining (val EPE: endpoint error of the predicted displacement on held-out views, voxels; "
                  "only COVER trains the displacement head):", "",
                  "| method | iterations | images | minutes | val EPE | zero-motion EPE |", "|---|---|---|---|---|---|"]
        for m, p in pretrain.items():
            epe = "" if p.get("val_epe") is None else f"{p['val_epe']:.2f}"
            zero = "" if p.get("val_epe_zero") is None else f"{p['val_epe_zero']:.2f}"
            lines.append(f"| {m} | {p['iterations']} | {p['images']} | {p['seconds'] / 60:.1f} | {epe} | {zero} |")
    minutes = sum(r["seconds"] for r in records) / 60 + sum(p["seconds"] for p in pretrain.values()) / 60
    lines += ["", f"Total run time of the bundle runs: {minutes:.0f} min."]
    md = out / "results.md"
    md.write_text("\n".join(lines) + "\n")
    xs = [float(f) * 100 for f in fracs]
    save_curves(out / "dice_vs_fraction.png", xs,
                {m: [100 * summary[m][f]["mean"] for f in fracs if f in summary[m]] for m in methods},
                "labeled train cases (%)", "test Dice (%)", f"{task.name} ({task.mode})",
                errors={m: [100 * summary[m][f]["std"] for f in fracs if f in summary[m]] for m in methods},
                xscale="log")
    return md
