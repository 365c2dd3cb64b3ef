"""One output folder, one run: a rerun with other data or settings stops instead of silently resuming.

Without this, both bundles would find the finished checkpoint of an earlier run, "resume" at its last iteration,
train nothing and keep (or re-export) the old model, exit 0, whatever ``--dataset_dir`` or ``--data_file`` said.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shlex
import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch.distributed as dist
from ignite.engine import Engine, Events
from monai.utils import str2bool

from monai_cover.data.fingerprint import content_fingerprint
from monai_cover.errors import RunMismatchError
from monai_cover.utils import atomic_write, is_main_process

__all__ = ["RunGuard", "describe_setting"]

RECORD = "run.json"
#: settings that list data files: the run record also holds what the files contain
CONTENT_OF = ("data", "validation_data")
REPLACED_PREFIX = "replaced_"
_SHORT = 60  # settings whose JSON is longer are recorded as a digest (data lists of thousands of files)


def describe_setting(value: Any) -> str:
    """A short, stable text for one setting: its JSON, or for long values ``"<n> items, sha1 <digest>"``."""
    text = json.dumps(value, sort_keys=True, default=str)
    if len(text) <= _SHORT:
        return text
    digest = hashlib.sha1(text.encode()).hexdigest()[:10]
    if isinstance(value, (list, tuple, dict)):
        return f"{len(value)} item{'' if len(value) == 1 else 's'}, sha1 {digest}"
    return f"sha1 {digest}"


def _entries(prefix: str, value: Mapping) -> list[tuple[str, str]]:
    """``(dotted name, description)`` of every plain entry of a (nested) mapping."""
    out: list[tuple[str, str]] = []
    for sub, v in value.items():
        name = f"{prefix}.{sub}"
        out += _entries(name, v) if isinstance(v, Mapping) and v else [(name, describe_setting(v))]
    return out


def _as_flag(described: str | None) -> str | None:
    """A recorded plain value (number, text, true/false/null) as the bundle command line takes it; ``None`` for
    lists, mappings and digests, which one flag cannot set back."""
    if described is None:
        return None
    try:
        value = json.loads(described)
    except ValueError:  # a digest ("5 items, sha1 ...")
        return None
    # str(): True / False / None, the bundle's spelling of JSON's true / false / null
    return shlex.quote(str(value)) if value is None or isinstance(value, (bool, int, float, str)) else None


def _older_than(path: Path, when: float) -> bool:
    """Whether ``path`` (or, for a folder, anything in it) existed before ``when`` (seconds since the epoch)."""
    stamps = [path.stat().st_mtime] if path.is_file() else [p.stat().st_mtime for p in path.rglob("*") if p.is_file()]
    return bool(stamps) and min(stamps) < when


class RunGuard:
    """Tie a training run's outputs to what determines its result; attach first to the trainer.

    On ``STARTED`` each output location that already holds files is compared with this run: ``output_dir``
    (checkpoints, histories, logs) and the folder of ``model_files`` (exported/best models and their ``.json``
    records; other files there, e.g. downloaded weights, are not touched). Both keep a ``run.json`` record.

    * same settings: nothing happens; the checkpoint handler resumes (more ``epochs`` extend a finished run);
    * other settings: :class:`~monai_cover.errors.RunMismatchError`, one line naming the folder and what changed,
      before anything is trained or written;
    * ``resume=False``: a fresh start; the existing outputs first move to ``<folder>/replaced_<time>/`` (kept, never
      deleted or overwritten).

    Outputs without a record (files no run of these bundles wrote) are refused like another run's.

    Args:
        settings: name -> value of everything that determines the result (data lists, widths, method, views, seed,
            batch size, learning rate, pretrained weights ...). Not ``epochs``.
        output_dir: the run's own folder.
        model_files: model files the run writes outside ``output_dir``.
        resume: ``False`` (or ``"false"``, ``"no"``, ...) to start over in the same folders.
    """

    def __init__(
        self, settings: Mapping[str, Any], output_dir: str | os.PathLike, model_files: Sequence[str | os.PathLike] = (),
        resume: bool | str = True,
    ) -> None:
        self.settings = {str(k): describe_setting(v) for k, v in settings.items()}
        # files replaced in place under the same names are other data: their contents are part of the run
        data = {k: settings[k] for k in CONTENT_OF if k in settings}
        if data:
            self.settings["file contents"] = f"sha1 {content_fingerprint(data)[:10]}"
        # a long mapping (e.g. the view settings) is recorded as a digest; its entries are kept beside it, nested
        # mappings down to their plain values (``views.pairs.temporal_gap``), so that a change can name the entry
        # that changed
        self.details = {name: v for k, value in settings.items()
                        if isinstance(value, Mapping) and self.settings[str(k)] != json.dumps(value, sort_keys=True,
                                                                                                default=str)
                        for name, v in _entries(str(k), value)}
        self.output_dir = Path(output_dir)
        self.model_files = [Path(f) for f in model_files]
        self.resume = str2bool(resume)  # "--resume false" on the command line arrives as a string
        # what this run's other handlers create before training starts (TensorBoard writers make their folder and
        # an event file when built) is not an earlier run's output
        self._created = time.time()
        self.logger = logging.getLogger(self.__class__.__name__)

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, self.check)

    def _outputs(self) -> dict[Path, tuple[list[Path], str]]:
        """Existing outputs per folder, and the bundle option that moves them elsewhere."""
        found: dict[Path, tuple[list[Path], str]] = {}
        if self.output_dir.is_dir():
            own = [p for p in self.output_dir.iterdir() if p.name != RECORD and not p.name.startswith(REPLACED_PREFIX)
                   and _older_than(p, self._created)]
            found[self.output_dir] = (sorted(own), "--output_dir")
        for f in self.model_files:
            files = [p for p in (f, f.with_suffix(".json")) if p.is_file()]
            if f.parent != self.output_dir:
                previous = found.get(f.parent, ([], "--model_dir"))[0]
                found[f.parent] = (sorted(set(previous + files)), "--model_dir")
        return {folder: v for folder, v in found.items() if v[0]}

    def _changes(self, folder: Path) -> tuple[str | None, list[str]]:
        """What differs from the run recorded in ``folder`` (one text) and, when every changed setting has a plain
        value, the options that set them back (``--temporal_smoothness 1.0``): a changed default is one flag away."""
        try:
            content = json.loads((folder / RECORD).read_text())
            old, old_details = content.get("settings", {}), content.get("details", {})
        except (OSError, ValueError, AttributeError):
            old, old_details = {}, {}
        keys = sorted(set(old) | set(self.settings), key=lambda k: (k not in self.settings, k))
        diffs, back, settable = [], [], True
        for k in (k for k in keys if old.get(k) != self.settings.get(k)):
            flag = _as_flag(old.get(k)) if k in self.settings else None
            back.append(f"--{k} {flag}")
            settable = settable and flag is not None
            entries = sorted({d for d in (*old_details, *self.details) if d.startswith(f"{k}.")})
            named = [f"{d} {old_details.get(d, 'unset')} -> {self.details.get(d, 'unset')}" for d in entries
                     if old_details.get(d) != self.details.get(d)]
            diffs += named or [f"{k} {old.get(k, 'unset')} -> {self.settings.get(k, 'unset')}"]
        # offered only when flags can undo every change (other data cannot be passed back as one option)
        return "; ".join(diffs) or None, back if settable else []

    def check(self, engine: Engine | None = None) -> None:
        if dist.is_available() and dist.is_initialized():
            # Under DDP every rank counts as earlier outputs only what existed when the first rank built its guard:
            # a rank that got here later would otherwise take the files rank 0 has written since (its TensorBoard
            # events) for another run's and stop the run, now and then.
            times: list[float | None] = [None] * dist.get_world_size()
            dist.all_gather_object(times, self._created)
            self._created = min(t for t in times if t is not None)
        outputs = self._outputs()
        if self.resume:
            for folder, (_, option) in outputs.items():
                aside = (f"pass --resume False to start over: the old outputs then move to "
                         f"{folder}/{REPLACED_PREFIX}<time>")
                if not (folder / RECORD).is_file():
                    raise RunMismatchError(f"{folder}: holds files that no run of this bundle recorded (no {RECORD}); "
                                           f"nothing was trained (use another {option}, or {aside})")
                changes, back = self._changes(folder)
                if changes:
                    cont = f"pass {' '.join(back)} to continue that run, " if back else ""
                    raise RunMismatchError(
                        f"{folder}: holds the outputs of a run with other settings ({changes}); nothing was trained "
                        f"(use another {option}, {cont}or {aside})")
        if is_main_process():
            stamp = time.strftime("%Y%m%d-%H%M%S")
            record = json.dumps({"settings": self.settings, "details": self.details,
                                 "output_dir": str(self.output_dir)}, indent=1)
            for folder in {self.output_dir, *(f.parent for f in self.model_files)}:
                if not self.resume and folder in outputs:
                    self._move_aside(folder, outputs[folder][0] + [folder / RECORD], stamp)
                folder.mkdir(parents=True, exist_ok=True)
                atomic_write(folder / RECORD, lambda tmp, text=record: Path(tmp).write_text(text))
        if dist.is_available() and dist.is_initialized():
            dist.barrier()  # no rank resumes from a checkpoint that rank 0 is moving aside

    def _move_aside(self, folder: Path, paths: list[Path], stamp: str) -> None:
        target = folder / f"{REPLACED_PREFIX}{stamp}"
        target.mkdir(parents=True, exist_ok=True)
        for p in paths:
            if p.exists():
                shutil.move(str(p), str(target / p.name))
        self.logger.info(f"starting over (resume False): the previous outputs of {folder} moved to {target}")
