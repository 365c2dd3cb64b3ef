"""Benchmark task files: where the data is, what the labels are, and the budget of each mode.

A task is a small JSON file (see ``monai_cover/label_efficiency/tasks/*.json``); add your own by copying one::

    {"name", "title", "layout": "jsrt_scr" | "msd_hippocampus" | "datalist", "data": <folder or datalist JSON>,
     "unlabeled": [<extra folders for pretraining>], "spatial_dims": 2 | 3, "multilabel": bool, "num_val": int,
     "methods": [...], "fractions": [...],
     "common": {<overrides for both bundles, e.g. channels>}, "pretrain": {<cover_pretrain overrides>},
     "seg": {<cover_seg overrides>}, "evaluations": ["finetune", "probe", "transfer"],
     "probe": {<cover_seg overrides of the linear probe, e.g. learning_rate>},
     "transfer": {<label_transfer.json settings without the transfer_ prefix: stride, top_n, temperature, levels>},
     "transfer_atlases": [1, 3, 5],
     "modes": {"quick": {"seeds", "pretrain_iterations", "finetune_steps", "probe_steps", "val_checks",
                         <any key above>}, ...}}

Optional keys: ``pretrain_seeds`` (default ``[0]``: each pretraining method is pretrained once per pretraining seed,
and every evaluation runs for every pretraining seed x label seed; ``seeds`` are the label seeds);
``converge`` instead of ``finetune_steps`` (``{"max_steps", "val_checks", "rise": 0.01, "window": 0.25}``: fine-tune
scratch for ``max_steps`` first, validating ``val_checks`` times, and fine-tune every method for the budget at which
scratch's mean validation Dice has stopped rising, see :func:`~monai_cover.label_efficiency.stats.converged_step`);
``pretrain_snapshots`` (shares of the pretraining iterations, e.g. ``[0.1, 0.25, 0.5, 1.0]``: keep the backbone and
the held-out EPE at each).

A mode's keys replace the task's; its ``common`` / ``pretrain`` / ``seg`` / ``probe`` / ``transfer`` / ``converge``
dicts are merged into the task's.
Relative ``data`` / ``unlabeled`` paths are relative to the current directory. Single values can be changed
without editing the file (the benchmark's ``--set``): ``finetune_steps=600``, ``seg.learning_rate=3e-4``.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from pathlib import Path

from monai_cover.config import BUNDLES
from monai_cover.errors import BadInputError
from monai_cover.label_efficiency.splits import LAYOUTS
from monai_cover.losses import PRETRAIN_METHODS
from monai_cover.utils import read_json

__all__ = ["TASK_DIR", "Task", "load_task"]

TASK_DIR = Path(__file__).parent / "tasks"
METHODS = (*PRETRAIN_METHODS, "scratch")
EVALUATIONS = ("finetune", "probe", "transfer")
_MERGED = ("common", "pretrain", "seg", "probe", "transfer", "converge")
_REQUIRED = ("name", "layout", "data", "spatial_dims", "methods", "fractions")
#: ``converge`` keys and their defaults (``None``: required); rise in Dice [0, 1], window a share of the steps
CONVERGE = {"max_steps": None, "val_checks": None, "rise": 0.01, "window": 0.25}


@dataclass
class Task:
    """A task resolved for one mode (all budgets and overrides final)."""

    name: str
    layout: str
    data: Path
    spatial_dims: int
    methods: list[str]
    fractions: list[float]
    seeds: list[int]
    pretrain_iterations: int
    mode: str
    #: fine-tuning steps; 0 when ``converge`` chooses them
    finetune_steps: int = 0
    title: str = ""
    unlabeled: list[Path] = field(default_factory=list)
    multilabel: bool = False
    num_val: int = 10
    val_checks: int = 1
    common: dict = field(default_factory=dict)
    pretrain: dict = field(default_factory=dict)
    seg: dict = field(default_factory=dict)
    evaluations: list[str] = field(default_factory=lambda: ["finetune"])
    probe_steps: int = 0
    probe: dict = field(default_factory=dict)
    transfer: dict = field(default_factory=dict)
    transfer_atlases: list[int] = field(default_factory=lambda: [1, 3, 5])
    #: pretraining seeds: every pretraining method is pretrained with each (scratch: the seed of its random backbone)
    pretrain_seeds: list[int] = field(default_factory=lambda: [0])
    #: ``{}`` or the converged-budget search (:data:`CONVERGE`, defaults filled in)
    converge: dict = field(default_factory=dict)
    #: shares of the pretraining iterations at which backbone snapshots and held-out EPE are kept
    pretrain_snapshots: list[float] = field(default_factory=list)


def _apply_setting(spec: dict, setting: str, path: Path) -> None:
    """Apply one ``KEY=VALUE`` (``KEY`` may be ``common.x`` / ``pretrain.x`` / ``seg.x``; ``VALUE`` is JSON or text)."""
    key, sep, text = setting.partition("=")
    if not sep or not key:
        raise BadInputError(f"{path}: setting {setting!r} is not KEY=VALUE")
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = text
    group, dot, name = key.partition(".")
    if dot:
        if group not in _MERGED or not name:
            raise BadInputError(f"{path}: setting {key!r}: dotted keys must start with {', '.join(_MERGED)}")
        spec[group] = {**spec.get(group, {}), name: value}
    else:
        spec[key] = value


def _unknown(path: Path, group: str, name: str, known: set[str], what: str, where: str) -> BadInputError:
    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    prefix = f"{group}." if group else ""
    hint = f"did you mean {prefix}{close[0]}?" if close else f"the {what}s are listed in {where}"
    return BadInputError(f"{path}: {prefix}{name}: unknown {what}; {hint}")


def _check_keys(spec: dict, path: Path) -> None:
    """Refuse, in one line naming the closest key, a task key or an override of a bundle setting that does not
    exist (it would be ignored, or passed to a bundle that refuses it only after pretraining has run)."""
    for key in spec:
        if key not in Task.__dataclass_fields__:
            raise _unknown(path, "", key, set(Task.__dataclass_fields__), "task key",
                           "monai_cover/label_efficiency/tasks.py")

    def settings(bundle: str, *configs: str) -> set[str]:
        return {n for n, s in BUNDLES[bundle].settings.items() if set(s.configs) & set(configs)}

    pretrain, seg = settings("cover_pretrain", "train"), settings("cover_seg", "train", "evaluate")
    transfer = {n.removeprefix("transfer_") for n in settings("cover_seg", "label_transfer")
                if n.startswith("transfer_")}
    seg_docs, pretrain_docs = "bundles/cover_seg/docs/README.md", "bundles/cover_pretrain/docs/README.md"
    groups = {"common": (pretrain & seg, "setting of both bundles", seg_docs),
              "pretrain": (pretrain, "cover_pretrain setting", pretrain_docs),
              "seg": (seg, "cover_seg setting", seg_docs), "probe": (seg, "cover_seg setting", seg_docs),
              "transfer": (transfer, "label transfer setting", seg_docs)}
    # a path into a config (pretrain.train#sampler#geometry#rotate_deg) reaches a component's argument, as on the
    # command line
    paths = {"pretrain": BUNDLES["cover_pretrain"].known(("train",)),
             "seg": BUNDLES["cover_seg"].known(("train", "evaluate")),
             "probe": BUNDLES["cover_seg"].known(("train", "evaluate"))}
    for group, (known, what, where) in groups.items():
        for name in spec.get(group) or {}:
            if name not in known and not ("#" in name and name.split("#")[0] in paths.get(group, ())):
                raise _unknown(path, group, name, known, what, where)


def load_task(task: str, mode: str = "quick", data: str | None = None, settings: list[str] | None = None) -> Task:
    """Read a task by built-in name (``jsrt_scr``, ``msd_hippocampus``) or JSON path, resolved for ``mode``.

    ``data`` replaces the task's data location; ``settings`` (``KEY=VALUE``) replace single values after the mode
    is applied. Errors name the task file and the problem.
    """
    path = Path(task)
    if not path.suffix:
        path = TASK_DIR / f"{task}.json"
    if not path.is_file():
        builtin = ", ".join(sorted(p.stem for p in TASK_DIR.glob("*.json")))
        raise BadInputError(f"{path}: task file not found (built-in tasks: {builtin})")
    spec = read_json(path)
    modes = spec.pop("modes", {})
    if mode not in modes:
        raise BadInputError(f"{path}: no mode {mode!r} (modes: {', '.join(modes) or 'none'})")
    for k, v in modes[mode].items():
        spec[k] = {**spec.get(k, {}), **v} if k in _MERGED else v
    for setting in settings or []:
        _apply_setting(spec, setting, path)
    missing = [k for k in (*_REQUIRED, "seeds", "pretrain_iterations") if k not in spec]
    if "finetune_steps" not in spec and not spec.get("converge"):
        missing.append("finetune_steps (or converge)")
    if missing:
        raise BadInputError(f"{path}: missing key(s) {', '.join(missing)} (mode {mode!r})")
    if spec.get("converge"):
        spec["converge"] = _converge(spec, path, mode)
    _check_keys(spec, path)
    if spec["layout"] not in LAYOUTS:
        raise BadInputError(f"{path}: layout must be one of {', '.join(LAYOUTS)}, got {spec['layout']!r}")
    bad = [m for m in spec["methods"] if m not in METHODS]
    if bad:
        raise BadInputError(f"{path}: unknown method(s) {', '.join(bad)} (choose from {', '.join(METHODS)})")
    bad = [e for e in spec.get("evaluations", []) if e not in EVALUATIONS]
    if bad:
        raise BadInputError(f"{path}: unknown evaluation(s) {', '.join(bad)} (choose from {', '.join(EVALUATIONS)})")
    if "probe" in spec.get("evaluations", []) and int(spec.get("probe_steps", 0)) < 1:
        raise BadInputError(f"{path}: the probe evaluation needs probe_steps >= 1 (mode {mode!r})")
    bad = [s for s in spec.get("pretrain_snapshots", []) if not 0 < s <= 1]
    if bad:
        raise BadInputError(f"{path}: pretrain_snapshots are shares of the pretraining iterations in (0, 1], got {bad}")
    if not spec.get("pretrain_seeds", [0]) or not spec.get("seeds"):
        raise BadInputError(f"{path}: seeds and pretrain_seeds need at least one seed each (mode {mode!r})")
    if data is not None:
        spec["data"] = data
    spec["data"] = Path(spec["data"]).resolve()
    spec["unlabeled"] = [Path(p).resolve() for p in spec.get("unlabeled", [])]
    if not spec["data"].exists():
        raise BadInputError(f"{spec['data']}: data for task {spec['name']!r} not found (pass --data <folder>)")
    return Task(mode=mode, **spec)


def _converge(spec: dict, path: Path, mode: str) -> dict:
    """``spec["converge"]`` with defaults filled in; one-line errors for a wrong key, a missing one, or a mode that
    also fixes ``finetune_steps``."""
    conv = spec["converge"]
    if "finetune_steps" in spec:
        raise BadInputError(f"{path}: mode {mode!r} sets both finetune_steps and converge; keep one (converge "
                            "chooses the fine-tuning steps)")
    unknown = sorted(set(conv) - set(CONVERGE))
    missing = [k for k, v in CONVERGE.items() if v is None and k not in conv]
    if unknown or missing:
        raise BadInputError(f"{path}: converge needs {', '.join(CONVERGE)} (defaults: rise 0.01, window 0.25); "
                            f"unknown {unknown or 'none'}, missing {missing or 'none'}")
    conv = {**CONVERGE, **conv}
    if int(conv["max_steps"]) < 1 or int(conv["val_checks"]) < 2 or not 0 < float(conv["window"]) < 1:
        raise BadInputError(f"{path}: converge needs max_steps >= 1, val_checks >= 2 and 0 < window < 1, got {conv}")
    return conv
