"""``python -m monai_cover.label_efficiency --task jsrt_scr --mode quick --out results/jsrt_scr_quick``

Pretrains every method of the task (COVER, the consistency-only ablation, the pixel InfoNCE baseline) once per
pretraining seed, fine-tunes each and a scratch model at every label fraction and (pretraining seed, label seed) with
the same budget (with the task's ``converge``: the budget at which scratch's validation Dice stopped rising, chosen
first), evaluates on the ``test`` split, and writes ``results.json``, ``results.md`` and plots
(``dice_vs_fraction.png``, or ``dice_by_evaluation.png`` for one fraction, ...) into ``--out``. Rerunning the same
command skips finished runs and resumes interrupted ones; adding ``--report_only`` rewrites the report from
``results.json`` without running anything.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from monai_cover.errors import BadInputError
from monai_cover.label_efficiency.report import task_budget, write_report
from monai_cover.label_efficiency.runner import BenchmarkError, BenchmarkRunner
from monai_cover.label_efficiency.tasks import load_task
from monai_cover.utils import read_json


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(prog="python -m monai_cover.label_efficiency", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", required=True, help="built-in task name (jsrt_scr, msd_hippocampus) or a task JSON")
    ap.add_argument("--mode", default="quick", help="budget from the task file (quick: 2-core CPU; full: GPU)")
    ap.add_argument("--quick", action="store_const", const="quick", dest="mode", help="same as --mode quick")
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--data", help="dataset location (replaces the task's)")
    ap.add_argument("--methods", nargs="+", help="subset of the task's methods")
    ap.add_argument("--fractions", nargs="+", type=float, help="label fractions in (0, 1]")
    ap.add_argument("--seeds", nargs="+", type=int, help="label seeds (subset of the task's)")
    ap.add_argument("--pretrain_seeds", nargs="+", type=int, help="pretraining seeds (subset of the task's)")
    ap.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", dest="settings",
                    help="change task values for this run, e.g. finetune_steps=600 pretrain.crop_size=128")
    ap.add_argument("--jobs", type=int, default=1,
                    help="bundle runs at a time (CPU: 2 on 2 cores, each then uses 1 thread)")
    ap.add_argument("--bundles", help="folder with cover_pretrain and cover_seg (default: this checkout's)")
    ap.add_argument("--report_only", action="store_true",
                    help="rewrite results.md and the plot from --out's results.json (same task options); runs nothing")
    a = ap.parse_args(argv)
    try:
        task = load_task(a.task, a.mode, a.data, a.settings)
        for k in ("methods", "fractions", "seeds", "pretrain_seeds"):
            if getattr(a, k):
                setattr(task, k, getattr(a, k))
        if a.report_only:
            records, pretrain, command, convergence = _saved_results(Path(a.out) / "results.json", task)
        else:
            runner = BenchmarkRunner(task, a.out, a.bundles, log=lambda m: print(m, flush=True), jobs=a.jobs)
            runner.run()
            records, pretrain, convergence = runner.records, runner.pretrain_records, runner.convergence
            command = "python -m monai_cover.label_efficiency " + shlex.join(argv)
    except (BadInputError, BenchmarkError, ValueError) as e:
        print(f"benchmark: error: {e}", file=sys.stderr)
        return 1
    md = write_report(a.out, task, records, pretrain, command, convergence)
    print(md.read_text())
    print(f"wrote {md}, results.json and the plots (*.png) in {a.out}")
    return 0


def _saved_results(path: Path, task) -> tuple[list[dict], list[dict], str, dict]:
    """Runs, pretraining records, command and budget search of an earlier report; refuses one made with another
    budget."""
    doc = read_json(path)
    saved = doc.get("budget", {})
    budget = task_budget(task)
    changed = ["task"] * (doc.get("task") != task.name)
    # --seeds / --pretrain_seeds may pick a subset
    changed += sorted(k for k in {*budget, *saved} - {"seeds", "pretrain_seeds"} if saved.get(k) != budget.get(k))
    if changed:
        raise BadInputError(f"{path}: made with other settings than task {task.name!r} mode {task.mode!r} "
                            f"({', '.join(changed)}); pass the options of the command that made it")
    return doc["runs"], doc.get("pretrain", []), doc["command"], doc.get("convergence", {})


if __name__ == "__main__":
    sys.exit(main())
