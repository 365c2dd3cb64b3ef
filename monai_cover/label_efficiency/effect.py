"""``python -m monai_cover.label_efficiency.effect --task jsrt_scr --mode headline --backbone B --steps N --out O``

What one pretrained backbone is worth on a labeled task: cover_seg fine-tuned from it and from scratch (a random
backbone) on the same labeled subset, with the same label seed and budget, tested on the task's ``test`` split;
the paired difference over label seeds with its t 95% interval. A released backbone's model card quotes it
(``python -m monai_cover.hub export --effect O/results.json``).

The runs are the benchmark's (:meth:`~monai_cover.label_efficiency.runner.BenchmarkRunner.finetune`): a seeded label
fraction of the train split, validation on its fixed holdout, the best validation checkpoint tested. Rerunning the
command reuses finished runs and resumes an interrupted one.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

from monai_cover.label_efficiency.cli import add_fine_tuning, backbone_file, pin_backbone, run_study, study_parser
from monai_cover.label_efficiency.runner import BenchmarkRunner
from monai_cover.label_efficiency.stats import paired_difference
from monai_cover.label_efficiency.tasks import load_task
from monai_cover.utils import atomic_write

__all__ = ["effect_table", "main"]


def effect_table(doc: dict) -> list[str]:
    """Markdown lines: the backbone against scratch, per label seed and as the paired difference (``doc``: an
    ``effect`` ``results.json``)."""
    runs = {(r["method"], r["seed"]): r["dice"] for r in doc["runs"]}
    d = doc["difference"]
    interval = f"[{100 * d['low']:+.1f}, {100 * d['high']:+.1f}]" if d["n"] > 1 else "(one seed: no interval)"
    lines = [f"Task `{doc['task']}` ({doc['title']}; mode `{doc['mode']}`): {doc['num_train']} labeled training "
             f"images ({100 * doc['fraction']:g}% of its train split), {doc['steps']} fine-tuning steps, test Dice (%) "
             "of the best validation checkpoint on the task's test split.", "",
             "| label seed | from this backbone | from scratch | difference |", "|---|---|---|---|"]
    for seed in doc["seeds"]:
        b, s = runs[("pretrained", seed)], runs[("scratch", seed)]
        lines.append(f"| {seed} | {100 * b:.1f} | {100 * s:.1f} | {100 * (b - s):+.1f} |")
    mean = f"{100 * d['mean']:+.1f}"
    mean = f"**{mean}**" if d["n"] > 1 and d["excludes_zero"] else mean  # bold: only what the interval supports
    lines += ["", f"Paired difference over {d['n']} label seeds: {mean} {interval} (95% t interval, p = {d['p']:.2g})"
              + ("." if d["n"] > 1 and d["excludes_zero"] else "; the interval includes 0: no difference shown."),
              "", f"Command: `{doc['command']}`"]
    return lines


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = study_parser("effect", __doc__)
    add_fine_tuning(ap)
    ap.add_argument("--fraction", type=float, default=None, help="label fraction (default: the mode's first)")
    a = ap.parse_args(argv)

    def work() -> Path:
        task = load_task(a.task, a.mode, a.data, a.settings)
        backbone = backbone_file(a.backbone)
        sha1 = pin_backbone(Path(a.out), backbone)
        fraction = task.fractions[0] if a.fraction is None else a.fraction
        out = Path(a.out)
        runner = BenchmarkRunner(task, out, log=lambda m: print(m, flush=True))
        runner.budgets = {fraction: a.steps}
        records = []
        for k, (seed, method) in enumerate([(s, m) for s in a.seeds for m in ("pretrained", "scratch")], 1):
            rec = runner.finetune(method, fraction, 0, seed, backbone if method == "pretrained" else None)
            records.append(rec)
            print(f"[{k}/{2 * len(a.seeds)}] {method:>10} seed {seed}: test Dice {100 * rec['dice']:.1f} "
                  f"({rec['seconds']:.0f} s)", flush=True)
        dice = {(r["method"], r["seed"]): r["dice"] for r in records}
        doc = {"task": task.name, "title": task.title, "mode": task.mode,
               "command": "python -m monai_cover.label_efficiency.effect " + shlex.join(argv),
               "backbone_sha1": sha1, "fraction": fraction, "num_train": records[0]["num_train"],
               "steps": a.steps, "seeds": a.seeds,
               "difference": paired_difference([dice[("pretrained", s)] for s in a.seeds],
                                               [dice[("scratch", s)] for s in a.seeds]),
               "runs": records}
        atomic_write(out / "results.json", lambda tmp: Path(tmp).write_text(json.dumps(doc, indent=1)))
        md = out / "results.md"
        md.write_text("\n".join(["# Fine-tuning from a pretrained backbone against scratch", "",
                                 *effect_table(doc)]) + "\n")
        return md

    return run_study("effect", work)


if __name__ == "__main__":
    sys.exit(main())
