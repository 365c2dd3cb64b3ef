"""Benchmark outputs: ``results.json`` (every run), ``results.md`` (tables, paired differences with 95% CIs and
Holm's correction over all of them, learning-curve summaries, the converged fine-tuning budget) and PNG plots (Dice vs
labels, label transfer vs atlases, learning curves, scratch's convergence)."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

from monai_cover.label_efficiency.stats import curve_area, holm, paired_difference, steps_to_reach
from monai_cover.label_efficiency.tasks import Task
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
#: family-wise error rate of Holm's correction over a report's paired intervals
ALPHA = 0.05
_TOKEN = re.compile("\x00(\\d+)\x00")  # a paired cell, filled in once every comparison of the report is known


def _stats(values: list[float]) -> dict:
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return {"mean": mean, "std": std, "n": n}


def _kind(r: dict) -> str:
    return r.get("eval", "finetune")  # results written before the other evaluations existed are fine-tuning


def _column(r: dict) -> str:
    return f"k{r['atlases']}" if _kind(r) == "transfer" else str(r["fraction"])


def _pseed(r: dict) -> int:
    return r["pretrain_seed"]


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
    """Paired difference ``method - reference`` over the (pretraining seed, label seed) pairs both ran (``key``:
    ``dice``, ``val_dice`` or ``auc``, the learning curve's area); ``by_pretrain_seed`` holds the mean difference of
    each pretraining seed's pairs."""
    def by_seed(m: str) -> dict:
        out = {}
        for r in records:
            if _kind(r) == kind and r["method"] == m and _column(r) == col:
                value = curve_area(r["curve"]) if key == "auc" and r.get("curve") else r.get(key)
                if value is not None and value == value:
                    out[(_pseed(r), r["seed"])] = value
        return out

    a, b = by_seed(method), by_seed(reference)
    pairs = sorted(set(a) & set(b))
    if not pairs:
        return None
    d = paired_difference([a[s] for s in pairs], [b[s] for s in pairs])
    d["by_pretrain_seed"] = {p: sum(x for (q, _), x in zip(pairs, d["diffs"]) if q == p) /
                             sum(q == p for q, _ in pairs) for p in sorted({q for q, _ in pairs})}
    return d


def _budget(requested: int, runs, key: str = "iterations") -> str:
    """``requested``, and what the runs did when whole epochs made it more (e.g. ``150 requested, 175 run``)."""
    done = sorted({int(r[key]) for r in runs if key in r})
    if not done or done == [requested]:
        return str(requested)
    return f"{requested} requested, {done[0] if len(done) == 1 else f'{done[0]}-{done[-1]}'} run"


def task_budget(task: Task) -> dict:
    """The task's budget as ``results.json`` records it: iterations, steps, seeds and every bundle override."""
    budget = {"pretrain_iterations": task.pretrain_iterations, "finetune_steps": task.finetune_steps,
              "probe_steps": task.probe_steps, "val_checks": task.val_checks, "seeds": task.seeds,
              "pretrain_seeds": task.pretrain_seeds,
              "common": task.common, "pretrain": task.pretrain, "seg": task.seg, "probe": task.probe,
              "transfer": task.transfer, "transfer_atlases": task.transfer_atlases}
    # recorded only when set, so results made before they existed (off) still read as the same budget
    budget.update({k: getattr(task, k) for k in ("converge", "pretrain_snapshots") if getattr(task, k)})
    return budget


def _budgets(convergence: dict) -> str:
    """The chosen fine-tuning budget(s): ``400 steps``, or per label fraction ``400 steps at 5%, 600 at 10%``."""
    if len(convergence) == 1:
        return f"{next(iter(convergence.values()))['budget']} steps"
    return ", ".join(f"{c['budget']}{' steps' * (i == 0)} at {float(f):.0%}"
                     for i, (f, c) in enumerate(convergence.items()))


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def _diff_cell(d: dict | None, survives: bool = False) -> str:
    """``+2.9 [+0.3, +5.4]``: bold when the 95% CI excludes 0, ``†`` when it survives Holm's correction; with
    several pretraining seeds their mean differences follow (``p0 +1.0 / p1 +4.8``)."""
    if d is None:
        return ""
    if d["n"] < 2:
        return f"{100 * d['mean']:+.1f}"
    text = f"{100 * d['mean']:+.1f} [{100 * d['low']:+.1f}, {100 * d['high']:+.1f}]"
    text = (f"**{text}**" if d["excludes_zero"] else text) + (" †" if survives else "")
    per = d.get("by_pretrain_seed", {})
    if len(per) > 1:
        text += " (" + " / ".join(f"p{p} {100 * m:+.1f}" for p, m in per.items()) + ")"
    return text


class _Report:
    """Builds results.md section by section from the summary and the raw records."""

    def __init__(self, task: Task, records: list[dict], summary: dict, convergence: dict | None = None) -> None:
        self.task, self.records, self.summary = task, records, summary
        self.convergence = convergence or {}
        self.lines: list[str] = []
        #: every paired interval of the report, in order: Holm's family
        self.comparisons: list[dict] = []

    def holm_note(self) -> str:
        """How many paired comparisons the report makes and how many survive Holm's correction."""
        tested = [d for d in self.comparisons if d["n"] >= 2]
        if not tested:
            return "Comparisons: none with an interval (one seed pair per difference), so no test and no correction."
        kept = sum(holm([d["p"] for d in tested], ALPHA))
        return (f"Comparisons: this report makes **{len(tested)} paired comparisons** (every interval in its "
                f"difference tables); Holm's correction over all {len(tested)} keeps **{kept}** of them significant at "
                f"{ALPHA:.0%} family-wise (marked †; p-values from the same paired t as the intervals). Bold: the "
                "interval alone excludes 0. Mean ± std tables mark nothing: methods are compared by the paired "
                "differences.")

    def rendered(self) -> list[str]:
        """The lines with every paired cell filled in (its Holm mark known only once all are)."""
        survives = holm([d["p"] if d["n"] >= 2 else math.nan for d in self.comparisons], ALPHA)
        return [_TOKEN.sub(lambda m: _diff_cell(self.comparisons[int(m.group(1))], survives[int(m.group(1))]), ln)
                for ln in self.lines]

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
        return f"{_pct(s[key + 'mean'])} ± {_pct(s[key + 'std'])}"  # no "best" mark: the paired tables decide

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
            cells = []
            for c in cols:
                d = paired(self.records, kind, m, ref, c, key)
                if d is not None:
                    self.comparisons.append(d)
                cells.append("" if d is None else f"\x00{len(self.comparisons) - 1}\x00")
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
        final = {(r["fraction"], _pseed(r), r["seed"]): r["curve"][-1][1] for r in runs if r["method"] == "scratch"}
        steps = sorted({int(p[0]) for r in runs for p in r["curve"]})
        self.lines += ["", "### Learning curves (fine-tuning, validation Dice)", "",
                       f"Validation Dice every ~{steps[0] if steps else '?'} steps. AUC = area under the validation "
                       "curve divided by its length (its average Dice, %), mean ± std over seeds. "
                       f"Reach = steps until validation Dice first reaches {REACH:.0%} of scratch's final validation "
                       "Dice for the same seeds and labels, per run in seed order (— = never)."
                       + (" These are the early view; the test Dice above is the converged one." if self.convergence
                          else ""), ""]
        self.table("finetune", "auc_")
        if final:
            self.lines += ["", "| method | " + " | ".join(f"reach, {float(c):.0%}" for c in cols) + " |",
                           "|---|" + "---|" * len(cols)]
            for m in methods:
                cells = []
                for c in cols:
                    rs = sorted((r for r in runs if r["method"] == m and str(r["fraction"]) == c),
                                key=lambda r: (_pseed(r), r["seed"]))
                    reach = [steps_to_reach(r["curve"], REACH * final[(r["fraction"], _pseed(r), r["seed"])])
                             for r in rs if (r["fraction"], _pseed(r), r["seed"]) in final]
                    cells.append(" / ".join("—" if x is None else str(x) for x in reach))
                self.lines.append(f"| {_NAMES.get(m, m)} | " + " | ".join(cells) + " |")
        self.lines += ["", "Paired AUC differences (Dice points, mean [95% CI t] over seed pairs; bold: the CI "
                       "excludes 0; †: survives Holm):", ""]
        self.paired_table("finetune", "auc")

    def section(self, kind: str) -> None:
        if kind not in self.summary:
            return
        t = self.task
        steps = (f"{_budgets(self.convergence)}, where scratch converged" if self.convergence
                 else f"{t.finetune_steps} steps")
        what = {"finetune": steps, "probe": f"{t.probe_steps} steps",
                "transfer": ", ".join(f"{k}={v}" for k, v in t.transfer.items()) or "defaults"}[kind]
        self.lines += ["", f"## {_TITLES[kind]} ({what})", "", "Test Dice (%), mean ± std over seeds:", ""]
        self.table(kind)
        if any("val_mean" in s for s in (x for by in self.summary[kind].values() for x in by.values())):
            self.lines += ["", f"Validation Dice (%) on the fixed {t.num_val}-case holdout inside `train` (the only "
                           "numbers to tune on):", ""]
            self.table(kind, "val_")
        self.lines += ["", "Paired differences in test Dice (points; mean [95% CI, t] over seed pairs, each pair the "
                       "same labeled cases / atlases and initialisation seed for both; bold: the CI excludes 0; †: "
                       "survives Holm):", ""]
        self.paired_table(kind)
        cols = self.columns(kind)
        for col in (cols if kind == "finetune" else cols[-1:]):
            self.per_structure(kind, col)
        if kind == "finetune":
            self.converged_budget()
            self.learning_curves()

    def converged_budget(self) -> None:
        """How the fine-tuning budget was chosen: scratch's mean validation curve and where it stopped rising."""
        for frac, c in self.convergence.items():
            runs = c["runs"]
            mean = c["mean_curve"]
            every = max(1, len(mean) // 8)
            shown = [p for i, p in enumerate(mean) if i % every == every - 1 or p[0] == c["budget"]]
            verdict = (f"it stopped rising at **{c['budget']} steps**, the budget of every method above"
                       if c["converged"] else f"**it still rose at {c['max_steps']} steps**: every method ran "
                       f"{c['budget']} steps, and the converged view needs a larger converge.max_steps")
            self.lines += ["", f"### Fine-tuning budget, {float(frac):.0%} labels (scratch, validation only)", "",
                           f"Scratch fine-tuned for {c['max_steps']} steps in {len(runs)} run(s) (every pretraining x "
                           f"label seed), validated {len(mean)} times on the holdout inside `train` (test never "
                           f"seen). The budget is the first validation step from which on the mean curve rises by "
                           f"less than {100 * c['rise']:.1f} Dice points over the last {c['window']:.0%} of the "
                           f"steps: {verdict} (`convergence_f{round(float(frac) * 100):03d}.png`).", "",
                           "| step | " + " | ".join(str(int(s)) for s, _ in shown) + " |",
                           "|---|" + "---|" * len(shown),
                           "| mean validation Dice (%) | " + " | ".join(_pct(v) for _, v in shown) + " |"]


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


def _convergence_plots(out: Path, task: Task, convergence: dict) -> None:
    """``convergence_f<percent>.png``: scratch's validation curves of the budget search, each run and their mean."""
    for frac, c in convergence.items():
        xs = [s for s, _ in c["mean_curve"]]
        curves = {f"p{r['pretrain_seed']} seed {r['seed']}": [100 * v for _, v in r["curve"]] for r in c["runs"]}
        curves["mean"] = [100 * v for _, v in c["mean_curve"]]
        save_curves(out / f"convergence_f{round(float(frac) * 100):03d}.png", xs, curves, "fine-tuning step",
                    "validation Dice (%)", f"{task.name}: scratch at {float(frac):.0%} labels, budget {c['budget']} "
                    f"steps ({'converged' if c['converged'] else 'not converged'})")


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


def write_report(out_dir: str | Path, task: Task, records: list[dict], pretrain: list[dict], command: str,
                 convergence: dict | None = None) -> Path:
    """Write ``results.json``, ``results.md`` and the plots into ``out_dir``; returns the markdown path.

    ``pretrain``: one record per (method, pretraining seed); ``convergence``: the fine-tuning budget search
    (:meth:`~monai_cover.label_efficiency.runner.BenchmarkRunner.choose_budgets`), if the task had one.
    """
    out = Path(out_dir)
    convergence = convergence or {}
    # the task's method order, whatever order the pretraining jobs finished (or were saved) in
    pretrain = sorted((p for p in pretrain if p["method"] in task.methods),
                      key=lambda p: (task.methods.index(p["method"]), _pseed(p)))
    summary = summarise(records)
    doc = {"task": task.name, "title": task.title, "mode": task.mode, "command": command,
           "budget": task_budget(task), "pretrain": pretrain, **({"convergence": convergence} if convergence else {}),
           "summary": summary, "runs": records}
    (out / "results.json").write_text(json.dumps(doc, indent=1))

    finetune = [r for r in records if _kind(r) == "finetune"]
    probe = [r for r in records if _kind(r) == "probe"]
    seeds = sorted({r["seed"] for r in records})
    pseeds = sorted({_pseed(r) for r in records} | {_pseed(p) for p in pretrain})
    pre_secs = sum(p["seconds"] for p in pretrain)
    conv_secs = sum(r["seconds"] for c in convergence.values() for r in c["runs"])
    all_secs = pre_secs + conv_secs + sum(r["seconds"] for r in records)
    timed = [x for x in [*pretrain, *records] if "start" in x and "end" in x]
    wall = (max(x["end"] for x in timed) - min(x["start"] for x in timed)) / 60 if timed else None
    once = ("once (its weights serve every evaluation, fraction and seed)" if len(pseeds) < 2 else
            f"once per pretraining seed {pseeds} (each backbone serves every evaluation, fraction and label seed)")
    budget = [f"Pretraining: {_budget(task.pretrain_iterations, pretrain)} iterations per method, {once}"]
    if finetune:
        steps = (f"{_budgets(convergence)}, the budget at which scratch's validation Dice stopped rising (below),"
                 if convergence
                 else f"{_budget(task.finetune_steps, finetune, 'steps')} steps")
        budget.append(f"fine-tuning: {steps} for every method, scratch included")
    if probe:
        budget.append(f"linear probe: {_budget(task.probe_steps, probe, 'steps')} steps")
    if len(pseeds) < 2:
        design = (f"Seeds {seeds}: each seed its own labeled subset, atlases and initialisation, shared by all methods "
                  "(paired comparisons).")
    else:
        design = (f"Label seeds {seeds} x pretraining seeds {pseeds}: a label seed fixes the labeled subset, atlases, "
                  "head initialisation and data order; a pretraining seed fixes the pretraining run (scratch: its "
                  "random backbone). Every pair of seeds is shared by all methods, and differences are paired over the "
                  f"{len(seeds) * len(pseeds)} pairs. Pairs with the same pretraining seed share a backbone, so the t "
                  "interval over pairs counts pretraining variance as if each pair had its own: the mean difference of "
                  "each pretraining seed (p0 / p1 ...) follows every interval to show it.")
    lines = [f"# Benchmark: {task.title or task.name} ({task.mode} mode)", "",
             f"Command: `{command}`", "",
             "; ".join(budget) + f" (runs end on whole epochs). {design}"]
    if all_secs:
        lines += ["", f"Time: pretraining {pre_secs / 60:.0f} of {all_secs / 60:.0f} bundle-process minutes "
                  f"(**{pre_secs / all_secs:.0%} pretraining**"
                  + (f", {conv_secs / 60:.0f} min choosing the fine-tuning budget)" if conv_secs else ")")
                  + (f"; {wall:.0f} min wall from the first run's start to the last run's end." if wall else ".")]
    rep = _Report(task, records, summary, convergence)
    for kind in ("finetune", "probe", "transfer"):
        rep.section(kind)
    lines += ["", rep.holm_note(), *rep.rendered()]
    if pretrain:
        lines += _pretrain_table(pretrain)
    lines += ["", f"Total run time of the bundle runs: {all_secs / 60:.0f} min."]
    md = out / "results.md"
    md.write_text("\n".join(lines) + "\n")
    _plots(out, task, summary)
    _learning_curve_plots(out, task, records)
    _convergence_plots(out, task, convergence)
    return md


def _epe(rec: dict, key: str = "val_epe") -> str:
    return "" if rec.get(key) is None else f"{rec[key]:.2f}"


def _pretrain_table(pretrain: list[dict]) -> list[str]:
    """One row per pretraining run; with snapshots, the held-out EPE at each."""
    snaps = any(p.get("snapshots") for p in pretrain)
    lines = ["", "## Pretraining", "", "val EPE: endpoint error of the predicted displacement on held-out views, "
             "voxels (the views are drawn with the pretraining seed); only COVER trains the displacement head."
             + (" Snapshots: the backbone kept at those iterations (`pretrain/<method>/p<seed>/models/snapshots/`), "
                "val EPE at each." if snaps else ""), "",
             "| method | pretraining seed | iterations | images | minutes | val EPE | zero-motion EPE |"
             + (" snapshots: iteration (val EPE) |" if snaps else ""),
             "|---|---|---|---|---|---|---|" + ("---|" if snaps else "")]
    for p in pretrain:
        row = (f"| {p['method']} | {_pseed(p)} | {p['iterations']} | {p['images']} | {p['seconds'] / 60:.1f} | "
               f"{_epe(p)} | {_epe(p, 'val_epe_zero')} |")
        if snaps:
            row += " " + ", ".join(f"{x['iteration']} ({_epe(x)})" for x in p.get("snapshots", [])) + " |"
        lines.append(row)
    return lines
