"""Run a benchmark task through the bundles: pretrain each method once per pretraining seed, then evaluate its
features three ways.

Evaluations (each a bundle run per method, label fraction or atlas count, pretraining seed and label seed; ``scratch``
= a random backbone drawn from the pretraining seed, so scratch has a distinct run for every pair of seeds too):
``finetune`` (cover_seg train + evaluate, validation Dice recorded along the way as a learning curve), ``probe``
(the same with the backbone frozen: a 1x1 head on fixed features) and ``transfer`` (cover_seg label_transfer.json:
no training, each test pixel/voxel takes the labels of its most similar positions in ``k`` labeled atlases).
With the task's ``converge`` setting, fine-tuning first runs scratch alone for ``max_steps`` with dense validation and
every method is then fine-tuned for the budget at which scratch's mean validation Dice stopped rising (validation
only: the holdout inside ``train``; these runs never see ``test``).

Every run is ``python -m monai.bundle run`` on the shipped bundle configs plus one ``overrides.json`` written into
the run's folder (so each number can be reproduced by hand; the log names the command). Runs that belong together (a
fine-tuning and its test evaluation; label transfer at every atlas count of a seed) share one process
(:mod:`monai_cover.label_efficiency.chain`), which saves Python's and MONAI's start-up for each. A run that finished has
a marker file and is skipped on a rerun; an interrupted one resumes from its own checkpoints (both bundles resume
automatically). ``jobs > 1`` runs that many bundle processes at once (each with ``cpu_count // jobs`` threads
unless ``OMP_NUM_THREADS`` is set): on a CPU, small networks use two 1-thread processes better than one 2-thread
process.
"""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path

from monai_cover.data.fingerprint import content_fingerprint
from monai_cover.label_efficiency.chain import MARKER
from monai_cover.label_efficiency.splits import fraction_datalist, labeled_cases, pretrain_datalist, transfer_datalist
from monai_cover.label_efficiency.stats import converged_step, mean_curve
from monai_cover.label_efficiency.tasks import Task
from monai_cover.utils import atomic_write

__all__ = ["BenchmarkError", "BenchmarkRunner", "default_bundles_dir"]


class BenchmarkError(RuntimeError):
    """A bundle run of the benchmark failed; the message names the run and its log."""


def default_bundles_dir() -> Path:
    """``bundles/`` of the source tree this package is imported from, else of the current directory."""
    here = Path(__file__).resolve().parents[2] / "bundles"
    return here if here.is_dir() else Path("bundles").resolve()


def _mean(values: list[float]) -> float:
    finite = [v for v in values if v == v]
    return sum(finite) / len(finite) if finite else float("nan")


def read_eval(eval_dir: Path, label_names: list[str], cases: set[str] | None = None) -> dict:
    """Dice (mean over cases and structures, and per structure) and HD95 from the cover_seg evaluation CSVs.

    ``cases``: only the rows of these image paths (the CSV's ``filename`` column: each image's path as the datalist
    gives it); default all.
    """
    def rows(name: str) -> list[dict]:
        with open(eval_dir / name) as f:
            return [r for r in csv.DictReader(f) if cases is None or r["filename"] in cases]

    dice_rows = rows("val_mean_dice_raw.csv")
    # columns named by structure (cover_seg's evaluation), or classK in files from before it named them
    cols = [name if dice_rows and name in dice_rows[0] else f"class{i}" for i, name in enumerate(label_names)]
    per_class = {name: _mean([float(r[c]) for r in dice_rows]) for name, c in zip(label_names, cols)}
    hd_file = eval_dir / "val_hd95_raw.csv"
    hd = _mean([float(r[c]) for r in rows(hd_file.name) for c in cols]) if hd_file.is_file() else float("nan")
    return {"dice": _mean([float(r[c]) for r in dice_rows for c in cols]), "hd95": hd, "dice_per_class": per_class,
            "num_test_cases": len(dice_rows)}


def _relative_to(overrides: dict, out: str) -> dict:
    """``overrides`` with string values under the folder ``out`` written as ``<out>/...``."""
    def rel(v):
        return "<out>" + v[len(out):] if isinstance(v, str) and (v == out or v.startswith(out + os.sep)) else v
    return {k: rel(v) for k, v in overrides.items()}


class BenchmarkRunner:
    """Runs one :class:`~monai_cover.label_efficiency.tasks.Task` into ``out_dir``.

    Layout: ``datalists/`` (pretraining list, one list per fraction and label seed), ``pretrain/<method>/p<pseed>/``
    (a cover_pretrain bundle root per pretraining seed, ``done.json`` its record, ``models/snapshots/`` its
    snapshots), ``finetune/<method>/f<percent>_p<pseed>_s<seed>/`` (a cover_seg bundle root with ``result.json``;
    ``probe/`` alike, ``transfer/<method>/k<atlases>_p<pseed>_s<seed>/``), ``converge/`` (scratch's long runs and
    ``budget.json``, the chosen fine-tuning budget) and, from :mod:`~monai_cover.label_efficiency.report`,
    ``results.json``/``.md``/``.png``.

    Args:
        task: the resolved task.
        out_dir: output folder (created).
        bundles_dir: folder holding ``cover_pretrain`` and ``cover_seg``.
        python: interpreter for the bundle runs.
        log: progress printer.
        jobs: bundle runs at a time.
    """

    def __init__(self, task: Task, out_dir: str | os.PathLike, bundles_dir: str | os.PathLike | None = None,
                 python: str = sys.executable, log=print, jobs: int = 1) -> None:
        if jobs < 1:
            raise ValueError(f"jobs must be >= 1, got {jobs}")
        self.task, self.out = task, Path(out_dir).resolve()
        self.bundles = Path(bundles_dir).resolve() if bundles_dir else default_bundles_dir()
        self.python, self.log, self.jobs = python, log, jobs
        self.train, self.test, self.label_names = labeled_cases(task.layout, task.data)
        self.records: list[dict] = []
        self._digests: dict[str, str] = {}
        #: one record per (method, pretraining seed), in the order they finished
        self.pretrain_records: list[dict] = []
        #: ``{str(fraction): {...}}`` when ``converge`` chose the fine-tuning budget (``converge/budget.json``)
        self.convergence: dict = {}
        #: fine-tuning steps per label fraction; ``None`` until ``converge`` has chosen them
        self.budgets: dict[float, int] | None = None if task.converge else {f: task.finetune_steps
                                                                             for f in task.fractions}

    # -- one bundle run -------------------------------------------------------------------------------------------
    def _same_settings(self, name: str, overrides: dict, run_dir: Path) -> bool:
        """False for a fresh run folder; raises if the folder holds a run made with other settings.

        Reusing (or resuming) a run of another budget would silently mix budgets in one table. Paths inside the
        output folder are compared relative to it, so an output folder that was moved or copied still matches.
        """
        ov = run_dir / f"{name}_overrides.json"
        if not ov.is_file():
            return False
        old = json.loads(ov.read_text())
        # where the output folder was when the run was made: its bundle_root minus the run's place inside it
        old_out = Path(old.get("bundle_root", run_dir)).parents[len(run_dir.relative_to(self.out).parts) - 1]
        old, new = _relative_to(old, str(old_out)), _relative_to(overrides, str(self.out))
        changed = sorted(k for k in {*old, *new} if old.get(k) != new.get(k))
        recorded = run_dir / f"{name}_contents.txt"
        if recorded.is_file() and recorded.read_text() != self._contents(overrides):
            changed.append("the contents of its data files (replaced under the same names)")
        if changed:
            raise BenchmarkError(f"{run_dir} holds a run made with other settings ({', '.join(changed)}); "
                                 "use another --out for this budget")
        return True

    def _contents(self, overrides: dict) -> str:
        """Digest of what the files of a run's datalist hold (test cases included), computed once per datalist."""
        lists = [overrides[k] for k in ("data_file", "dataset_dir") if str(overrides.get(k, "")).endswith(".json")]
        digests = []
        for path in lists:
            if path not in self._digests:
                self._digests[path] = content_fingerprint(json.loads(Path(path).read_text()))
            digests.append(self._digests[path])
        return " ".join(digests)

    def _bundle(self, name: str, configs: list[Path], overrides: dict, run_dir: Path) -> float:
        """One bundle run (``name`` with its ``overrides`` written into ``run_dir``); returns its seconds."""
        return self._bundles([(name, configs, overrides, run_dir)], run_dir / f"{name}.log")[0]

    def _bundles(self, steps: list[tuple[str, list[Path], dict, Path]], log_file: Path) -> list[float]:
        """Bundle runs ``(name, configs, overrides, run_dir)`` one after another in one process
        (:mod:`monai_cover.label_efficiency.chain`: Python and MONAI start once), logged to ``log_file``.

        Returns each run's seconds, in order; the process start is counted in the first, so they add up to the
        wall time.
        Raises :class:`BenchmarkError` naming the run that failed and the log.
        """
        args = []
        for name, configs, overrides, run_dir in steps:
            self._same_settings(name, overrides, run_dir)
            run_dir.mkdir(parents=True, exist_ok=True)
            ov = run_dir / f"{name}_overrides.json"
            ov.write_text(json.dumps(overrides, indent=1))
            (run_dir / f"{name}_contents.txt").write_text(self._contents(overrides))
            args.append(f"{name}={json.dumps([str(c) for c in configs] + [str(ov)])}")
        log_file.parent.mkdir(parents=True, exist_ok=True)
        times_file = log_file.with_suffix(".times.json")
        times_file.unlink(missing_ok=True)
        cmd = [self.python, "-m", "monai_cover.label_efficiency.chain", str(times_file), *args]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(self.bundles.parent),
                                                                            os.environ.get("PYTHONPATH")])))
        if self.jobs > 1 and "OMP_NUM_THREADS" not in env:  # else every process takes every core
            env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // self.jobs))
        t0 = time.perf_counter()
        with open(log_file, "w") as f:
            rc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=self.bundles.parent).returncode
        total = time.perf_counter() - t0
        if rc != 0:
            text = log_file.read_text()
            started = sum(ln.startswith(MARKER) for ln in text.splitlines())
            name, _, _, run_dir = steps[max(0, started - 1)]
            tail = text.strip().splitlines()[-5:]
            raise BenchmarkError(f"{name} in {run_dir} failed (exit {rc}); see {log_file}:\n  " + "\n  ".join(tail))
        secs = [t["seconds"] for t in json.loads(times_file.read_text())]
        secs[0] += total - sum(secs)
        return secs

    # -- pretraining --------------------------------------------------------------------------------------------
    def pretrain(self, method: str, pseed: int) -> Path:
        """Pretrain ``method`` with pretraining seed ``pseed`` (its initialisation, views and validation views) for the
        task's iteration budget; returns the exported backbone weights. With ``pretrain_snapshots`` the backbone and
        the held-out EPE are also kept at those shares of the iterations (``models/snapshots/``)."""
        t = self.task
        run_dir = self.out / "pretrain" / method / f"p{pseed}"
        done = run_dir / "done.json"
        weights = run_dir / "models" / "model.safetensors"
        datalist = self.out / "datalists" / "pretrain.json"
        items = len(json.loads(datalist.read_text())["training"])
        num_val = 2
        n_train = items - num_val if items > 2 * num_val else items
        batch = int(t.pretrain.get("batch_size", 4))
        per_epoch = n_train // batch if n_train > batch else 1
        epochs = max(1, math.ceil(t.pretrain_iterations / per_epoch))
        iterations = epochs * per_epoch
        snapshots = sorted({max(1, round(share * iterations)) for share in t.pretrain_snapshots})
        overrides = {"bundle_root": str(run_dir), "dataset_dir": str(datalist), "num_val": num_val,
                     "spatial_dims": t.spatial_dims, "method": method, "epochs": epochs, "seed": pseed,
                     "checkpoint_interval": 100, **({"snapshot_iterations": snapshots} if snapshots else {}),
                     **t.common, **t.pretrain}
        if done.is_file() and self._same_settings("pretrain", overrides, run_dir):
            rec = json.loads(done.read_text())
            if weights.is_file() or not self._unfinished(method, pseed):
                self.pretrain_records.append(rec)
                self.log(f"pretrain {method} p{pseed}: done earlier ({rec['iterations']} iterations)")
                return weights
            # an output folder carried without its weights (they may not be shareable, e.g. trained on research-only
            # data): evaluations that still need them get the same pretraining again, from the same seed
            self.log(f"pretrain {method} p{pseed}: done earlier but {weights} is gone; pretraining again")
            done.unlink()
        self.log(f"pretrain {method} p{pseed}: {iterations} iterations on {n_train} images ...")
        start = time.time()
        secs = self._bundle("pretrain", [self.bundles / "cover_pretrain/configs/train.json"], overrides, run_dir)
        # outputs/<n>d: n is the network's dimensions, 2 for slice-wise pretraining of volumes
        hist_file = next(iter(sorted((run_dir / "outputs").glob("[23]d/val_history.json"))), None)
        hist = {h["iteration"]: h for h in json.loads(hist_file.read_text())} if hist_file else {}
        last = hist[max(hist)] if hist else {}
        rec = {"method": method, "pretrain_seed": pseed, "iterations": iterations, "images": n_train,
               "seconds": round(secs, 1), "start": start, "end": time.time(),
               "val_epe": last.get("val_epe"), "val_epe_zero": last.get("val_epe_zero")}
        if snapshots:  # paths relative to the output folder, so a moved folder still finds them
            rec["snapshots"] = [{"iteration": it, "val_epe": hist.get(it, {}).get("val_epe"),
                                 "val_epe_zero": hist.get(it, {}).get("val_epe_zero"),
                                 "weights": str((run_dir / "models" / "snapshots" / f"iteration_{it:06d}" /
                                                 "model.safetensors").relative_to(self.out))}
                                for it in snapshots]
        done.write_text(json.dumps(rec, indent=1))
        self.pretrain_records.append(rec)
        self.log(f"pretrain {method} p{pseed}: {secs:.0f} s, final val EPE {rec['val_epe']}")
        return weights

    def _unfinished(self, method: str, pseed: int) -> bool:
        """Whether an evaluation of ``method``'s backbone of pretraining seed ``pseed`` has no result yet."""
        t = self.task
        dirs = [self.out / kind / method / f"f{round(f * 100):03d}_p{pseed}_s{seed}" for seed in t.seeds
                for kind in ("finetune", "probe") if kind in t.evaluations for f in t.fractions]
        if "transfer" in t.evaluations:
            dirs += [self.out / "transfer" / method / f"k{k}_p{pseed}_s{seed}" for seed in t.seeds
                     for k in t.transfer_atlases]
        return not all((d / "result.json").is_file() for d in dirs)

    # -- fine-tuning and linear probe (cover_seg train + evaluate) ---------------------------------------------
    def finetune(self, method: str, fraction: float, pseed: int, seed: int, weights: Path | None,
                 kind: str = "finetune") -> dict:
        """Fine-tune (``kind="finetune"``) or train a 1x1 head on the frozen backbone (``"probe"``) on ``fraction``
        of the train split with label seed ``seed``, evaluate on test. ``weights=None`` starts from a random backbone
        drawn from ``pseed`` (``scratch``). ``"converge"``: scratch's long run that chooses the fine-tuning budget
        (``converge.max_steps``, ``converge.val_checks`` validations, no test evaluation).

        The record holds test Dice, the validation Dice of the tested checkpoint (``models/model.pt``: the best
        validation) and its step (``val_dice``, ``val_step``) and the validation learning curve ``[[step, Dice], ...]``.
        """
        t = self.task
        run_dir = self.out / kind / method / f"f{round(fraction * 100):03d}_p{pseed}_s{seed}"
        steps = {"finetune": self.budgets[fraction] if self.budgets else 0, "probe": t.probe_steps,
                 "converge": t.converge.get("max_steps")}[kind]
        return self.seg_run(kind, *self.fraction_datalist(fraction, seed), run_dir, steps, seed, weights, pseed,
                            {"method": method, "fraction": fraction})

    def fraction_datalist(self, fraction: float, seed: int) -> tuple[dict, Path]:
        """The datalist of label ``fraction`` and label seed ``seed`` and the file it is written to, shared by every
        method's run of that pair (and by studies of the same runs)."""
        dl = fraction_datalist(self.train, self.test, fraction, seed, self.task.num_val)
        return dl, self.out / "datalists" / f"f{round(fraction * 100):03d}_s{seed}.json"

    def seg_run(self, kind: str, dl: dict, dl_file: Path, run_dir: Path, steps: int, seed: int, weights: Path | None,
                pseed: int, about: dict, extra: dict | None = None) -> dict:
        """One cover_seg run of ``kind`` (see :meth:`finetune`) on the datalist ``dl`` (written to ``dl_file``) for
        ``steps`` steps into ``run_dir``; ``about`` goes into the record after ``eval`` (what the run is); ``extra``:
        more overrides (e.g. the probe's ``head_levels``). A finished run with the same settings is read back
        instead."""
        t = self.task
        # atomic: with jobs > 1 other methods' runs may be reading the same (identical) file right now
        atomic_write(dl_file, lambda tmp: Path(tmp).write_text(json.dumps(dl, indent=1)))
        result = run_dir / "result.json"
        n = len(dl["training"])
        batch = int(t.seg.get("batch_size", 4))
        per_epoch = math.ceil(n / batch)
        checks, kind_extra = {"finetune": (t.val_checks, {}), "probe": (1, {"freeze_backbone": True, **t.probe}),
                         "converge": (t.converge.get("val_checks"), {})}[kind]
        epochs = max(1, math.ceil(steps / per_epoch))
        # probes validate once, at the end; fine-tuning val_checks times (the learning curve)
        val_interval = max(1, epochs // max(1, checks))
        overrides = {"bundle_root": str(run_dir), "data_file": str(dl_file), "spatial_dims": t.spatial_dims,
                     "multilabel": t.multilabel, "label_names": self.label_names, "seed": seed, "epochs": epochs,
                     "val_interval": val_interval, **self._backbone(weights, pseed), **t.common, **t.seg, **kind_extra,
                     **(extra or {})}
        if result.is_file() and self._same_settings("train", overrides, run_dir):
            return json.loads(result.read_text())
        seg = self.bundles / "cover_seg/configs"
        steps_run = [("train", [seg / "train.json"], overrides, run_dir)]
        if kind != "converge":  # choosing the budget looks at validation only
            steps_run.append(("evaluate", [seg / "train.json", seg / "evaluate.json"], overrides, run_dir))
        start = time.time()
        secs = sum(self._bundles(steps_run, run_dir / "train.log"))
        history = json.loads((run_dir / "outputs" / "dice_history.json").read_text())
        # the tested model is BestModelSaver's (models/model.pt): its validation Dice and epoch are in model.json
        best = json.loads((run_dir / "models" / "model.json").read_text())
        rec = {"eval": kind, **about, "pretrain_seed": pseed, "seed": seed,
               "num_train": n, "steps": epochs * per_epoch, "seconds": round(secs, 1), "start": start,
               "end": time.time(), "val_dice": best["best"], "val_step": best["epoch"] * per_epoch,
               "curve": [[h["epoch"] * per_epoch, h["dice"]] for h in history]}
        if kind != "converge":
            rec.update(read_eval(run_dir / "outputs" / "eval", self.label_names))
        atomic_write(result, lambda tmp: Path(tmp).write_text(json.dumps(rec, indent=1)))
        return rec

    @staticmethod
    def _backbone(weights: Path | None, pseed: int) -> dict:
        """cover_seg overrides of the backbone: the pretrained weights, or scratch's random backbone drawn from the
        pretraining seed (shared by its label seeds, as a pretrained backbone is)."""
        return {"pretrained": str(weights)} if weights else {"pretrained": None, "backbone_seed": pseed}

    # -- label transfer (cover_seg label_transfer.json, no training) -------------------------------------------
    def transfer(self, method: str, pseed: int, seed: int, weights: Path | None, atlas_counts: list[int] | None = None,
                 run_root: Path | None = None, about: dict | None = None, extra: dict | None = None) -> list[dict]:
        """Segment the validation and test cases from each of the task's atlas counts ``k`` (the label seed's first
        ``k`` labeled cases, so the same atlases for every method) by feature matching; Dice on both. One record per
        ``k``, each from its own bundle run (``transfer/<method>/k<k>_p<pseed>_s<seed>/``), all in one process.
        ``atlas_counts``, ``run_root`` (instead of ``transfer/<method>``), ``about`` (more of the record) and
        ``extra`` (more overrides, e.g. ``transfer_levels``) serve other studies of the same runs."""
        t = self.task
        atlas_counts = atlas_counts or t.transfer_atlases
        run_root = run_root or self.out / "transfer" / method
        dl = transfer_datalist(self.train, self.test, max(atlas_counts), seed, t.num_val)
        # other atlas counts than the task's: another file, so the task's own runs still find theirs unchanged
        name = f"transfer_s{seed}" if atlas_counts == t.transfer_atlases else f"transfer_k{max(atlas_counts)}_s{seed}"
        dl_file = self.out / "datalists" / f"{name}.json"
        atomic_write(dl_file, lambda tmp: Path(tmp).write_text(json.dumps(dl, indent=1)))
        seg = self.bundles / "cover_seg/configs"
        configs = [seg / "train.json", seg / "evaluate.json", seg / "label_transfer.json"]
        records: dict[int, dict] = {}
        todo = []
        for atlases in atlas_counts:
            run_dir = run_root / f"k{atlases}_p{pseed}_s{seed}"
            result = run_dir / "result.json"
            overrides = {"bundle_root": str(run_dir), "data_file": str(dl_file), "spatial_dims": t.spatial_dims,
                         "multilabel": t.multilabel, "label_names": self.label_names, "seed": seed,
                         **self._backbone(weights, pseed), "num_atlases": atlases,
                         **t.common, **t.seg, **{f"transfer_{k}": v for k, v in t.transfer.items()}, **(extra or {})}
            if result.is_file() and self._same_settings("transfer", overrides, run_dir):
                records[atlases] = json.loads(result.read_text())
            else:
                todo.append((atlases, run_dir, overrides))
        if todo:
            start = time.time()
            secs = self._bundles([("transfer", configs, ov, rd) for _, rd, ov in todo],
                                 run_root / f"p{pseed}_s{seed}.log")
            for (atlases, run_dir, _), sec in zip(todo, secs):
                ev = run_dir / "outputs" / "label_transfer"
                val = read_eval(ev, self.label_names, {c["image"] for c in dl["validation"]})
                rec = {"eval": "transfer", "method": method, **(about or {}), "atlases": atlases,
                       "pretrain_seed": pseed, "seed": seed, "seconds": round(sec, 1), "start": start,
                       "end": time.time(), "val_dice": val["dice"],
                       **read_eval(ev, self.label_names, {c["image"] for c in self.test})}
                atomic_write(run_dir / "result.json", lambda tmp, r=rec: Path(tmp).write_text(json.dumps(r, indent=1)))
                records[atlases] = rec
        return [records[k] for k in atlas_counts]

    def prepare(self) -> None:
        """Write the pretraining datalist (``train`` split + the task's unlabeled folders) into the output folder."""
        (self.out / "datalists").mkdir(parents=True, exist_ok=True)
        (self.out / "datalists" / "pretrain.json").write_text(
            json.dumps(pretrain_datalist(self.train, self.task.unlabeled), indent=1))

    # -- the converged fine-tuning budget --------------------------------------------------------------------
    def choose_budgets(self, runs: list[dict]) -> dict:
        """Per label fraction, the fine-tuning budget from scratch's ``converge`` runs (the first pretraining seed,
        every label seed): the first validation step from which on their mean curve rises less than
        ``converge.rise`` over the last ``converge.window`` of the steps
        (:func:`~monai_cover.label_efficiency.stats.converged_step`); ``max_steps`` when it never stops rising
        (``converged: false``). Sets :attr:`budgets` and :attr:`convergence` and writes ``converge/budget.json``."""
        c = self.task.converge
        self.budgets, self.convergence = {}, {}
        for f in self.task.fractions:
            rs = sorted((r for r in runs if r["fraction"] == f), key=lambda r: (r["pretrain_seed"], r["seed"]))
            mean = mean_curve([r["curve"] for r in rs])
            step = converged_step(mean, c["rise"], c["window"])
            self.budgets[f] = int(mean[-1][0]) if step is None else step
            self.convergence[str(f)] = {
                "budget": self.budgets[f], "converged": step is not None, **c, "mean_curve": mean,
                "runs": [{k: r[k] for k in ("pretrain_seed", "seed", "steps", "seconds", "val_dice", "val_step",
                                            "curve")} for r in rs]}
            self.log(f"converge {f:.0%}: scratch's mean validation Dice "
                     + (f"still rose at {mean[-1][0]:.0f} steps" if step is None else f"stopped rising at step {step}")
                     + f"; fine-tuning budget {self.budgets[f]} steps")
        atomic_write(self.out / "converge" / "budget.json",
                     lambda tmp: Path(tmp).write_text(json.dumps(self.convergence, indent=1)))
        return self.convergence

    def _runs(self, method: str, pseed: int) -> list[tuple]:
        """``(function, args, kind)`` of every evaluation of ``method`` with pretraining seed ``pseed`` (weights
        filled in later); a transfer entry covers every atlas count of its label seed."""
        t = self.task
        runs = []
        for seed in t.seeds:
            for kind in ("finetune", "probe"):
                if kind in t.evaluations:
                    runs += [(self.finetune, (method, f, pseed, seed), kind) for f in t.fractions]
            if "transfer" in t.evaluations:
                runs.append((self.transfer, (method, pseed, seed), None))
        return runs

    def run(self) -> list[dict]:
        """Everything: scratch's ``converge`` runs, then each pretraining followed by its evaluations (fine-tuning
        once the budget is known), scratch's evaluations last. Results are ordered (method, pretraining seed, label
        seed, evaluation) whatever order the jobs finish in."""
        t = self.task
        self.prepare()
        order = {m: i for i, m in enumerate(t.methods)}
        per_seed = len(t.fractions) * sum(k in t.evaluations for k in ("finetune", "probe")) + (
            len(t.transfer_atlases) if "transfer" in t.evaluations else 0)
        # records: one per atlas count for transfer
        runs_total = len(t.methods) * len(t.pretrain_seeds) * len(t.seeds) * per_seed
        backbones = [(m, p) for m in t.methods for p in t.pretrain_seeds]
        with ThreadPoolExecutor(self.jobs) as pool:
            try:
                # Queued in this order, so that a run stopped half-way leaves whole pieces (a pretraining with all
                # its evaluations, not four pretrainings whose weights nothing used yet): scratch's converge runs
                # first, then one pretraining per job, each followed by its evaluations before the next pretraining
                # starts; scratch's evaluations (they need no weights) last.
                # the budget from scratch's runs of the first pretraining seed (its label seeds): for scratch a
                # pretraining seed only draws the random backbone, and each long run costs hours on a CPU
                converging = [(f, t.pretrain_seeds[0], s) for f in t.fractions for s in t.seeds
                              if t.converge and "finetune" in t.evaluations]
                pending = {pool.submit(self.finetune, "scratch", f, p, s, None, kind="converge"): ("converge", None)
                           for f, p, s in converging}
                to_pretrain = [b for b in backbones if b[0] != "scratch"]
                scratch = [b for b in backbones if b[0] == "scratch"]
                converged: list[dict] = []
                ready: dict[tuple, Path | None] = {}

                def submit(backbone: tuple, which: set[str | None]) -> None:
                    """Queue ``backbone``'s evaluations of the kinds in ``which`` (``None``: transfer)."""
                    method, pseed = backbone
                    for i, (fn, args, kind) in enumerate(self._runs(method, pseed)):
                        if kind in which:
                            extra = {"kind": kind} if kind else {}
                            key = (order[method], t.pretrain_seeds.index(pseed), i)
                            pending[pool.submit(fn, *args, ready[backbone], **extra)] = ("run", key)

                def weights_ready(backbone: tuple, weights: Path | None) -> None:
                    """Queue what can run now: everything once the fine-tuning budget is known, else all but it."""
                    ready[backbone] = weights
                    submit(backbone, {"probe", None} | ({"finetune"} if self.budgets is not None else set()))

                def pretrain_next() -> None:
                    """Queue the next pretraining; once none is left, scratch's evaluations."""
                    if to_pretrain:
                        b = to_pretrain.pop(0)
                        pending[pool.submit(self.pretrain, *b)] = ("pretrain", b)
                        return
                    while scratch:
                        weights_ready(scratch.pop(0), None)

                for _ in range(self.jobs):
                    pretrain_next()
                done: dict = {}
                run_seconds = 0.0
                while pending:  # one loop for every kind, so runs are reported while pretraining still goes on
                    finished, _ = wait(list(pending), return_when=FIRST_COMPLETED)
                    queued = list(pending)  # in the order they were queued, which the next submissions keep
                    for fut in sorted(finished, key=queued.index):
                        what, key = pending.pop(fut)
                        if what == "pretrain":
                            weights_ready(key, fut.result())
                            pretrain_next()
                            continue
                        if what == "converge":
                            converged.append(fut.result())
                            self.log(f"[converge {len(converged)}/{len(converging)}] scratch "
                                     f"{converged[-1]['fraction']:.0%} p{converged[-1]['pretrain_seed']} seed "
                                     f"{converged[-1]['seed']}: best val Dice {100 * converged[-1]['val_dice']:.1f} "
                                     f"at step {converged[-1]['val_step']}")
                            if len(converged) == len(converging):
                                self.choose_budgets(converged)
                                for b in ready:
                                    submit(b, {"finetune"})
                            continue
                        result = fut.result()
                        for j, rec in enumerate(result if isinstance(result, list) else [result]):
                            done[(*key, j)] = rec
                            k = len(done)
                            # from the runs' own durations: the wall time since the start includes pretraining
                            run_seconds += rec.get("seconds", 0.0)
                            eta = run_seconds / k * (runs_total - k) / self.jobs
                            where = f"{rec['fraction']:>5.0%}" if "fraction" in rec else f"k={rec['atlases']}"
                            self.log(f"[{k}/{runs_total}] {rec.get('eval', 'finetune'):>8} {rec['method']:>14} "
                                     f"{where} p{rec['pretrain_seed']} seed {rec['seed']}: val Dice "
                                     f"{100 * rec.get('val_dice', float('nan')):.1f}, test Dice "
                                     f"{100 * rec['dice']:.1f} ({rec['seconds']:.0f} s; ETA {eta / 60:.0f} min)")
            except BaseException:
                pool.shutdown(cancel_futures=True)  # runs already started finish; queued ones do not start
                raise
        self.records = [done[k] for k in sorted(done)]
        order_pre = {(m, p): i for i, (m, p) in enumerate(backbones)}
        self.pretrain_records.sort(key=lambda r: order_pre[(r["method"], r["pretrain_seed"])])
        return self.records
