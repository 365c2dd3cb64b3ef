"""Benchmark outputs: ``results.json`` (every run), ``results.md`` (tables, paired differences with 95% CIs,
learning-curve summaries) and PNG plots (Dice vs labels, label transfer vs atlases, learning curves)."""

from __future__ import annotations

import json
import math
from pathlib import Path

from monai_cover.benchmark.stats import curve_area, paired_difference, steps_to_reach
from monai_cover.benchmark.tasks import Task
from monai_cover.visualize import save_curves, save_points

__all__ = ["summarise", "write_report", "task_budget"]

_NAMES = {"cover": "COVER", "consistency": "consistency only (L_con, no L_vec)",
          "pixel_contrast": "pixel InfoNCE (binary contrast)", "scratch": "scratch (no pretraining)"}
_SHORT = {"cover": "COVER", "consistency": "consistency", "pixel_contrast": "pixel InfoNCE", "scratch": "scratch"}
_RANDOM = {"probe": "random init (frozen)", "transfer": "random init"}
_TITLES = {
    "finetune": "Fine-tuning",
    "probe": "Linear probe (backbone frozen, 1x1 head trained)",
    "transfer": "Label transfer by feature matching (no training; k labeled atlases)",
}
#: paired comparisons: every method against these references, when both ran
REFERENCES = ("scratch", "pixel_contrast")
#: learning curves: steps to reach this share of scratch's final validation Dice
REACH = 0.95


def _stats(values: list[float]) -> dict:
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return {"mean": mean, "std": std, "n": n}


def _kind(r: dict) -> str:
    return r.get("eval", "finetune")  # results written before the other evaluations existed are fine-tuning


def _column(r: dict) -> str:
    return f"k{r['atlases']}" if _kind(r) == "transfer" else str(r["fraction"])


def summarise(records: list[dict]) -> dict:
    """``{evaluation: {method: {column: {"mean", "std", "n", "per_class", "val_mean", "val_std", ...}}}}``.

    Columns are label fractions (``"0.1"``) or atlas counts (``"k3"``). Dice in [0, 1]; ``mean``/``std`` over seeds
    on the test split, ``val_*`` on the validation holdout inside ``train``; fine-tuning also has ``auc_mean`` /
    ``auc_std``, the learning curve's normalised area (its average validation Dice).
    """
    groups: dict = {}
    for r in records:
        groups.setdefault(_kind(r), {}).setdefault(r["method"], {}).setdefault(_column(r), []).append(r)
    summary: dict = {}
    for kind, by_method in groups.items():
        for method, by_col in by_method.items():
            for col, rs in by_col.items():
                s = _stats([r["dice"] for r in rs])
                s["per_class"] = {k: sum(r["dice_per_class"][k] for r in rs) / len(rs) for k in rs[0]["dice_per_class"]}
                if "num_train" in rs[0]:
                    s["num_train"] = rs[0]["num_train"]
                vals = [r["val_dice"] for r in rs if r.get("val_dice") is not None]
                if vals:  # Dice on the fixed holdout inside ``train``: the number to tune on
                    v = _stats(vals)
                    s["val_mean"], s["val_std"] = v["mean"], v["std"]
                curves = [r["curve"] for r in rs if r.get("curve")]
                if curves and kind == "finetune":
                    a = _stats([curve_area(c) for c in curves])
                    s["auc_mean"], s["auc_std"] = a["mean"], a["std"]
                summary.setdefault(kind, {}).setdefault(method, {})[col] = s
    return summary


def paired(records: list[dict], kind: str, method: str, reference: str, col: str, key: str = "dice") -> dict | None:
    """Paired difference ``method - reference`` over the seeds both ran (``key``: ``dice``, ``val_dice`` or
    ``auc``, the learning curve's area)."""
    def by_seed(m: str) -> dict:
        out = {}
        for r in records:
            if _kind(r) == kind and r["method"] == m and _column(r) == col:
                value = curve_area(r["curve"]) if key == "auc" and r.get("curve") else r.get(key)
                if value is not None and value == value:
                    out[r["seed"]] = value
        return out

    a, b = by_seed(method), by_seed(reference)
    seeds = sorted(set(a) & set(b))
    return paired_difference([a[s] for s in seeds], [b[s] for s in seeds]) if seeds else None


def _budget(requested: int, runs, key: str = "iterations") -> str:
    """``requested``, and what the runs did when whole epochs made it more (e.g. ``150 requested, 175 run``)."""
    done = sorted({int(r[key]) for r in runs if key in r})
    if not done or done == [requested]:
        return str(requested)
    return f"{requested} requested, {done[0] if len(done) == 1 else f'{done[0]}-{done[-1]}'} run"


def task_budget(task: Task) -> dict:
    """The task's budget as ``results.json`` records it: iterations, steps, seeds and every bundle override."""
    return {"pretrain_iterations": task.pretrain_iterations, "finetune_steps": task.finetune_steps,
            "probe_steps": task.probe_steps, "val_checks": task.val_checks, "seeds": task.seeds,
            "common": task.common, "pretrain": task.pretrain, "seg": task.seg, "probe": task.probe,
            "transfer": task.transfer, "transfer_atlases": task.transfer_atlases}


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def _diff_cell(d: dict | None) -> str:
    if d is None:
        return ""
    if d["n"] < 2:
        return f"{100 * d['mean']:+.1f}"
    text = f"{100 * d['mean']:+.1f} [{100 * d['low']:+.1f}, {100 * d['high']:+.1f}]"
    return f"**{text}**" if d["excludes_zero"] else text


class _Report:
    """Builds results.md section by section from the summary and the raw records."""

    def __init__(self, task: Task, records: list[dict], summary: dict) -> None:
        self.task, self.records, self.summary = task, records, summary
        self.lines: list[str] = []

    def name(self, kind: str, method: str) -> str:
        return _RANDOM.get(kind, _NAMES["scratch"]) if method == "scratch" else _NAMES.get(method, method)

    def methods(self, kind: str) -> list[str]:
        return [m for m in self.task.methods if m in self.summary.get(kind, {})]

    def columns(self, kind: str) -> list[str]:
        wanted = ([f"k{k}" for k in self.task.transfer_atlases] if kind == "transfer"
                  else [str(f) for f in self.task.fractions])
        return [c for c in wanted if any(c in self.summary[kind][m] for m in self.methods(kind))]

    def header(self, kind: str, col: str) -> str:
        if kind == "transfer":
            return f"{col[1:]} atlas{'es' if col != 'k1' else ''}"
        n = next(self.summary[kind][m][col].get("num_train") for m in self.methods(kind)
                 if col in self.summary[kind][m])
        return f"{float(col):.0%} ({n} cases)"

    def cell(self, kind: str, m: str, col: str, key: str = "") -> str:
        s = self.summary[kind][m].get(col)
        if s is None or f"{key}mean" not in s:
            return ""
        best = max(self.summary[kind][k][col].get(f"{key}mean", -1) for k in self.methods(kind)
                   if col in self.summary[kind][k])
        text = f"{_pct(s[key + 'mean'])} ± {_pct(s[key + 'std'])}"
        return f"**{text}**" if s[key + "mean"] == best else text

    def table(self, kind: str, key: str = "") -> None:
        cols = self.columns(kind)
        self.lines += ["| method | " + " | ".join(self.header(kind, c) for c in cols) + " |",
                       "|---|" + "---|" * len(cols)]
        self.lines += [f"| {self.name(kind, m)} | " + " | ".join(self.cell(kind, m, c, key) for c in cols) + " |"
                       for m in self.methods(kind)]

    def paired_table(self, kind: str, key: str = "dice") -> None:
        cols, methods = self.columns(kind), self.methods(kind)
        rows: list[tuple[str, str]] = []
        for ref in (r for r in REFERENCES if r in methods):
            rows += [(m, ref) for m in methods if m != ref and (ref, m) not in rows]  # no mirrored row
        if not rows:
            return
        self.lines += ["| difference | " + " | ".join(self.header(kind, c) for c in cols) + " |",
                       "|---|" + "---|" * len(cols)]
        for m, ref in rows:
            cells = [_diff_cell(paired(self.records, kind, m, ref, c, key)) for c in cols]
            short = {**_SHORT, "scratch": "random init"} if kind in _RANDOM else _SHORT
            self.lines.append(f"| {short.get(m, m)} − {short.get(ref, ref)} | " + " | ".join(cells) + " |")

    def per_structure(self, kind: str, col: str) -> None:
        methods = [m for m in self.methods(kind) if col in self.summary[kind][m]]
        classes = list(self.summary[kind][methods[0]][col]["per_class"])
        self.lines += ["", f"Per structure, {self.header(kind, col)} (test Dice %, mean over seeds):", "",
                       "| method | " + " | ".join(classes) + " |", "|---|" + "---|" * len(classes)]
        self.lines += [f"| {self.name(kind, m)} | " + " | ".join(
            _pct(self.summary[kind][m][col]["per_class"][c]) for c in classes) + " |" for m in methods]

    def learning_curves(self) -> None:
        """AUC table, steps to reach 95% of scratch's final validation Dice, paired AUC differences."""
        methods, cols = self.methods("finetune"), self.columns("finetune")
        runs = [r for r in self.records if _kind(r) == "finetune" and r.get("curve")]
        if not runs:
            return
        final = {(r["fraction"], r["seed"]): r["curve"][-1][1] for r in runs if r["method"] == "scratch"}
        steps = sorted({int(p[0]) for r in runs for p in r["curve"]})
        self.lines += ["", "### Learning curves (fine-tuning, validation Dice)", "",
                       f"Validation Dice every ~{steps[0] if steps else '?'} steps. AUC = area under the validation "
                       "curve divided by its length (its average Dice, %), mean ± std over seeds. "
                       f"Reach = steps until validation Dice first reaches {REACH:.0%} of scratch's final validation "
                       "Dice for the same seed and labels, per seed (— = never).", ""]
        self.table("finetune", "auc_")
        if final:
            self.lines += ["", "| method | " + " | ".join(f"reach, {float(c):.0%}" for c in cols) + " |",
                           "|---|" + "---|" * len(cols)]
            for m in methods:
                cells = []
                for c in cols:
                    rs = sorted((r for r in runs if r["method"] == m and str(r["fraction"]) == c),
                                key=lambda r: r["seed"])
                    reach = [steps_to_reach(r["curve"], REACH * final[(r["fraction"], r["seed"])])
                             for r in rs if (r["fraction"], r["seed"]) in final]
                    cells.append(" / ".join("—" if x is None else str(x) for x in reach))
                self.lines.append(f"| {_NAMES.get(m, m)} | " + " | ".join(cells) + " |")
        self.lines += ["", "Paired AUC differences (Dice points, mean [95% CI t] over seeds; bold: the CI excludes 0):",
                       ""]
        self.paired_table("finetune", "auc")

    def section(self, kind: str) -> None:
        if kind not in self.summary:
            return
        t = self.task
        what = {"finetune": f"{t.finetune_steps} steps", "probe": f"{t.probe_steps} steps",
                "transfer": ", ".join(f"{k}={v}" for k, v in t.transfer.items()) or "defaults"}[kind]
        self.lines += ["", f"## {_TITLES[kind]} ({what})", "", "Test Dice (%), mean ± std over seeds:", ""]
        self.table(kind)
        if any("val_mean" in s for s in (x for by in self.summary[kind].values() for x in by.values())):
            self.lines += ["", f"Validation Dice (%) on the fixed {t.num_val}-case holdout inside `train` (the only "
                           "numbers to tune on):", ""]
            self.table(kind, "val_")
        self.lines += ["", "Paired differences in test Dice (points; mean [95% CI, t] over seeds, each seed the same "
                       "labeled cases / atlases and initialisation seed for both; bold: the CI excludes 0):", ""]
        self.paired_table(kind)
        cols = self.columns(kind)
        for col in (cols if kind == "finetune" else cols[-1:]):
            self.per_structure(kind, col)
        if kind == "finetune":
            self.learning_curves()


def _plots(out: Path, task: Task, summary: dict) -> None:
    def curves(kind: str, cols: list[str]) -> tuple[dict, dict]:
        methods = [m for m in task.methods if m in summary[kind]]
        return ({m: [100 * summary[kind][m][c]["mean"] for c in cols if c in summary[kind][m]] for m in methods},
                {m: [100 * summary[kind][m][c]["std"] for c in cols if c in summary[kind][m]] for m in methods})

    if len(task.fractions) == 1:  # a curve over one fraction says nothing: every evaluation side by side instead
        _evaluations_plot(out, task, summary)
    for kind, file in (("finetune", "dice_vs_fraction.png"), ("probe", "probe_vs_fraction.png")):
        if kind in summary and len(task.fractions) > 1:
            cols = [str(f) for f in task.fractions if any(str(f) in v for v in summary[kind].values())]
            mean, err = curves(kind, cols)
            xs = [float(c) * 100 for c in cols]
            save_curves(out / file, xs, mean, "labeled train cases (%)", "test Dice (%)",
                        f"{task.name} ({task.mode}): {_TITLES[kind].split(' (')[0].lower()}", errors=err,
                        xscale="log" if xs and max(xs) >= 10 * min(xs) else "linear")  # log only over a decade
    if "transfer" in summary:
        cols = [f"k{k}" for k in task.transfer_atlases if any(f"k{k}" in v for v in summary["transfer"].values())]
        mean, err = curves("transfer", cols)
        save_curves(out / "transfer_vs_atlases.png", [int(c[1:]) for c in cols], mean, "labeled atlases",
                    "test Dice (%)", f"{task.name} ({task.mode}): label transfer", errors=err)


def _evaluations_plot(out: Path, task: Task, summary: dict) -> None:
    """``dice_by_evaluation.png``: test Dice (mean +- std over seeds) of every method in every evaluation of a
    single-fraction run (fine-tuning, linear probe, label transfer with each atlas count)."""
    frac = str(task.fractions[0])
    cats = [(kind, frac, label) for kind, label in (("finetune", "fine-tune"), ("probe", "linear probe"))
            if kind in summary]
    cats += [("transfer", f"k{k}", f"transfer, {k} atlas{'es' if k > 1 else ''}") for k in task.transfer_atlases
             if "transfer" in summary]
    methods = [m for m in task.methods if any(m in summary[k] for k, _, _ in cats)]
    if not cats or not methods:
        return

    def values(m: str, stat: str) -> list[float | None]:
        return [100 * summary[k][m][c][stat] if c in summary[k].get(m, {}) else None for k, c, _ in cats]

    save_points(out / "dice_by_evaluation.png", [label for _, _, label in cats],
                {_NAMES.get(m, m).split(" (")[0]: values(m, "mean") for m in methods}, "test Dice (%)",
                f"{task.name} ({task.mode}), {float(frac):.0%} labels: mean ± std over seeds",
                errors={_NAMES.get(m, m).split(" (")[0]: values(m, "std") for m in methods})


def _learning_curve_plots(out: Path, task: Task, records: list[dict]) -> None:
    runs = [r for r in records if _kind(r) == "finetune" and r.get("curve")]
    for f in task.fractions:
        by_method = {}
        for m in task.methods:
            cs = [r["curve"] for r in runs if r["method"] == m and r["fraction"] == f]
            if cs and all(len(c) == len(cs[0]) for c in cs):
                by_method[m] = ([p[0] for p in cs[0]], [100 * sum(c[i][1] for c in cs) / len(cs)
                                                        for i in range(len(cs[0]))])
        if by_method:
            xs = next(iter(by_method.values()))[0]
            save_curves(out / f"learning_curve_f{round(f * 100):03d}.png", xs,
                        {m: v for m, (x, v) in by_method.items() if x == xs}, "fine-tuning step",
                        "validation Dice (%)", f"{task.name}: {f:.0%} labels, mean over seeds")


def write_report(out_dir: str | Path, task: Task, records: list[dict], pretrain: dict, command: str) -> Path:
    """Write ``results.json``, ``results.md`` and the plots into ``out_dir``; returns the markdown path."""
    out = Path(out_dir)
    # the task's method order, whatever order the pretraining jobs finished (or were saved) in
    pretrain = {m: pretrain[m] for m in task.methods if m in pretrain}
    summary = summarise(records)
    doc = {"task": task.name, "title": task.title, "mode": task.mode, "command": command,
           "budget": task_budget(task), "pretrain": pretrain, "summary": summary, "runs": records}
    (out / "results.json").write_text(json.dumps(doc, indent=1))

    finetune = [r for r in records if _kind(r) == "finetune"]
    probe = [r for r in records if _kind(r) == "probe"]
    seeds = sorted({r["seed"] for r in records})
    pre_secs = sum(p["seconds"] for p in pretrain.values())
    all_secs = pre_secs + sum(r["seconds"] for r in records)
    timed = [x for x in [*pretrain.values(), *records] if "start" in x and "end" in x]
    wall = (max(x["end"] for x in timed) - min(x["start"] for x in timed)) / 60 if timed else None
    budget = [f"Pretraining: {_budget(task.pretrain_iterations, pretrain.values())} iterations per method, once "
              "(its weights serve every evaluation, fraction and seed)"]
    if finetune:
        budget.append(f"fine-tuning: {_budget(task.finetune_steps, finetune, 'steps')} steps for every method, "
                      "scratch included")
    if probe:
        budget.append(f"linear probe: {_budget(task.probe_steps, probe, 'steps')} steps")
    lines = [f"# Benchmark: {task.title or task.name} ({task.mode} mode)", "",
             f"Command: `{command}`", "",
             "; ".join(budget) + f" (runs end on whole epochs). Seeds {seeds}: each seed its own labeled subset, "
             "atlases and initialisation, shared by all methods (paired comparisons)."]
    if all_secs:
        lines += ["", f"Time: pretraining {pre_secs / 60:.0f} of {all_secs / 60:.0f} bundle-process minutes "
                  f"(**{pre_secs / all_secs:.0%} pretraining**)"
                  + (f"; {wall:.0f} min wall from the first run's start to the last run's end." if wall else ".")]
    rep = _Report(task, records, summary)
    for kind in ("finetune", "probe", "transfer"):
        rep.section(kind)
    lines += rep.lines
    if pretrain:
        lines += ["", "## Pretraining", "", "val EPE: endpoint error of the predicted displacement on held-out views, "
                  "voxels; only COVER trains the displacement head.", "",
                  "| method | iterations | images | minutes | val EPE | zero-motion EPE |", "|---|---|---|---|---|---|"]
        for m, p in pretrain.items():
            epe = "" if p.get("val_epe") is None else f"{p['val_epe']:.2f}"
            zero = "" if p.get("val_epe_zero") is None else f"{p['val_epe_zero']:.2f}"
            lines.append(f"| {m} | {p['iterations']} | {p['images']} | {p['seconds'] / 60:.1f} | {epe} | {zero} |")
    lines += ["", f"Total run time of the bundle runs: {all_secs / 60:.0f} min."]
    md = out / "results.md"
    md.write_text("\n".join(lines) + "\n")
    _plots(out, task, summary)
    _learning_curve_plots(out, task, records)
    return md
