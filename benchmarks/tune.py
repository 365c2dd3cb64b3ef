"""Why does (or doesn't) COVER pretraining help? Budget variants of a benchmark task, judged on validation Dice.

Each variant is one ``python -m monai_cover.label_efficiency`` run (same bundles, same splits) with a few task values
changed through ``--set``, written to ``OUT/<variant>``. The table printed at the end (and written to
``OUT/tuning.md``) gives, per variant / method / label fraction, the Dice on the fixed validation holdout inside
``train`` -- the number decisions are made on -- and, for reporting only, the test Dice. Variants whose methods
list is empty only pretrain COVER and are judged on the displacement error (EPE) on held-out ``train`` images.

Run from the repository root (one task per process; two tasks can run side by side on a 2-core CPU)::

    OMP_NUM_THREADS=1 PYTHONPATH=. python benchmarks/tune.py --task jsrt_scr --out results/tune_jsrt_scr
    OMP_NUM_THREADS=1 PYTHONPATH=. python benchmarks/tune.py --task msd_hippocampus --out results/tune_hippocampus
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from monai_cover.label_efficiency.__main__ import main as benchmark
from monai_cover.label_efficiency.runner import BenchmarkRunner
from monai_cover.label_efficiency.tasks import load_task

# the sampler's ranges through its config path (what --train#sampler#geometry#rotate_deg 15 does on the command line)
MILD_2D = [f"pretrain.train#sampler#geometry#{k}={json.dumps(v)}" for k, v in
           {"rotate_deg": 15.0, "scale_range": [0.75, 1.25], "shear_deg": 8.4, "translate_frac": 0.1}.items()]

# name -> (methods, --set values); scratch is left out where only pretraining changes (it would repeat a run).
VARIANTS = {
    "jsrt_scr": {
        "finetune150": (["cover", "scratch"], ["finetune_steps=150"]),  # the first quick budget
        "finetune600": (["cover", "scratch"], ["finetune_steps=600"]),
        "pretrain600_finetune600": (["cover"], ["pretrain_iterations=600", "finetune_steps=600"]),
        # pretraining only (val EPE): learning rate, crop size, the authors' very wide 2D ranges vs the 3D ones
        "pretrain300": ([], ["pretrain_iterations=300"]),
        "pretrain300_lr1e-4": ([], ["pretrain_iterations=300", "pretrain.learning_rate=1e-4"]),
        "pretrain300_lr1e-3": ([], ["pretrain_iterations=300", "pretrain.learning_rate=1e-3"]),
        "pretrain300_crop128": ([], ["pretrain_iterations=300", "pretrain.crop_size=128"]),
        # ... and the one that changed the pretraining (val EPE 5.6 of 15.3 vs 30 of 40), fine-tuned as well
        "pretrain300_mild_ranges": (["cover"], ["pretrain_iterations=300", *MILD_2D, "finetune_steps=600"]),
        # everything that lowered the EPE, and 3x longer: does a better-learnt pretext task show up downstream?
        "pretrain1000_lr1e-3_mild_ranges": (["cover"], ["pretrain_iterations=1000", "pretrain.learning_rate=1e-3",
                                                        *MILD_2D, "finetune_steps=600"]),
        # issue 12: the bundle defaults for init, appearance and 2D rotation sampling, ours vs the authors' (all
        # three together), at the current quick budget; judged on validation Dice of all three evaluations
        "views_ours": (["cover"], ["pretrain.init=default", "pretrain.appearance=mild",
                                   "pretrain.rotation_sampling=uniform"]),
        "views_reference": (["cover"], ["pretrain.init=kaiming", "pretrain.appearance=reference",
                                        "pretrain.rotation_sampling=reference"]),
    },
    "msd_hippocampus": {
        "finetune100": (["cover", "scratch"], ["finetune_steps=100"]),  # the first quick budget
        "finetune400": (["cover", "scratch"], ["finetune_steps=400"]),
        "pretrain300_finetune400": (["cover"], ["pretrain_iterations=300", "finetune_steps=400"]),
    },
}


def table(out: Path, variants: list[str]) -> str:
    """Markdown table of validation (and test) Dice for every variant folder that has ``results.json``."""
    def epe(p: dict) -> str:
        if p.get("val_epe") is None:
            return ""
        zero = f" ({p['val_epe_zero']:.2f})" if p.get("val_epe_zero") is not None else ""
        return f"{p['val_epe']:.2f}{zero}"

    lines = ["| variant | evaluation | method | labels | seeds | val Dice % | test Dice % | "
             "pretrain val EPE (zero motion) |", "|---|---|---|---|---|---|---|---|"]
    for name in variants:
        res, done = out / name / "results.json", out / name / "pretrain" / "cover" / "p0" / "done.json"
        if not res.is_file():
            if done.is_file():  # pretraining-only variant
                p = json.loads(done.read_text())
                lines.append(f"| {name} | | cover (pretraining only, {p['iterations']} it) | | | | | {epe(p)} |")
            continue
        doc = json.loads(res.read_text())
        summary = doc["summary"]
        if "finetune" not in summary and "probe" not in summary and "transfer" not in summary:
            summary = {"finetune": summary}  # older results.json: fine-tuning only
        pretrain = {p["method"]: p for p in doc["pretrain"] if p.get("pretrain_seed", 0) == 0}
        for kind, by_method in summary.items():
            for method, by_col in by_method.items():
                pre = epe(pretrain.get(method, {}))
                for col, s in by_col.items():
                    val = f"{100 * s['val_mean']:.1f} ± {100 * s['val_std']:.1f}" if "val_mean" in s else ""
                    labels = f"{col[1:]} atlases" if col.startswith("k") else f"{float(col):.0%}"
                    lines.append(f"| {name} | {kind} | {method} | {labels} | {s['n']} | {val} | "
                                 f"{100 * s['mean']:.1f} ± {100 * s['std']:.1f} | {pre} |")
    return "\n".join(lines) + "\n"


def run(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", required=True, choices=sorted(VARIANTS))
    ap.add_argument("--out", required=True)
    ap.add_argument("--only", nargs="+", help="variant names to run (default: all)")
    ap.add_argument("--fractions", nargs="+", default=["0.1", "1.0"])
    ap.add_argument("--seeds", nargs="+", default=["0"])
    ap.add_argument("--data", help="dataset location (replaces the task's)")
    ap.add_argument("--jobs", default="1", help="bundle runs at a time (passed to the benchmark)")
    a = ap.parse_args(argv)
    out = Path(a.out)
    names = a.only or list(VARIANTS[a.task])
    unknown = sorted(set(names) - set(VARIANTS[a.task]))
    if unknown:
        ap.error(f"unknown variant(s) {', '.join(unknown)}; choose from {', '.join(VARIANTS[a.task])}")
    for name in names:
        methods, settings = VARIANTS[a.task][name]
        if not methods:
            print(f"== variant {name}: pretraining only, --set {' '.join(settings)}", flush=True)
            runner = BenchmarkRunner(load_task(a.task, "quick", a.data, settings), out / name,
                                     log=lambda m: print(m, flush=True))
            runner.prepare()
            runner.pretrain("cover", 0)
            continue
        argv_b = ["--task", a.task, "--quick", "--out", str(out / name), "--methods", *methods,
                  "--fractions", *a.fractions, "--seeds", *a.seeds, "--jobs", a.jobs,
                  *(["--data", a.data] if a.data else [])]
        if settings:
            argv_b += ["--set", *settings]
        print(f"== variant {name}: python -m monai_cover.label_efficiency {' '.join(argv_b)}", flush=True)
        if benchmark(argv_b) != 0:
            return 1
    command = "python benchmarks/tune.py " + " ".join(argv or sys.argv[1:])
    md = f"# Tuning {a.task} (quick-mode base)\n\nCommand: `{command}`\n\n"
    md += table(out, names)
    (out / "tuning.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(run())
