"""The runs of retraining from MONAI Label: one folder per run below ``<bundle>/runs/``, its record, and the served
model (``<bundle>/models/model.pt`` + ``model.json``) that a validated run replaces.

Layout of a run ``<bundle>/runs/<run>/`` (``<run>`` is the start time, ``20260101-120000``):

- ``retrain.json``: the record (:data:`RECORD`): which labels (image ids and the SHA-1 of each label file), which were
  held out for validation, which model it started from, the settings given, its status and validation Dice;
- ``datalist.json``: the images and labels it trained and validated on;
- ``start/model.pt`` (+ ``model.json``): the served model it continued from, as it was then (absent when it started
  from the COVER backbone);
- ``outputs/`` and ``models/``: the cover_seg bundle's own output and model folders for this run (checkpoints,
  TensorBoard, ``dice_curve.png``; the run's best model by validation Dice);
- ``served_eval/``: the served model scored on this run's validation images (the bundle's ``evaluate.json``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monai_cover.errors import BadInputError
from monai_cover.utils import atomic_write

__all__ = [
    "LabeledImage", "RECORD", "RetrainRuns", "SERVED_KEY", "file_sha1", "image_id", "labeled_images", "promote",
    "served_run", "split_validation",
]

#: a run's record, in its folder
RECORD = "retrain.json"
#: the entry of the served ``model.json`` naming the run it came from (the bundle reads only ``settings`` there)
SERVED_KEY = "retrain"
#: run statuses: started (or stopped before the end: a retrain with the same inputs resumes it), ended in an error,
#: validated and now served, validated but not served (the served model scored higher)
TRAINING, FAILED, SERVED, KEPT = "training", "failed", "served", "kept"
logger = logging.getLogger(__name__)


def file_sha1(path: str | os.PathLike) -> str:
    """SHA-1 of a file's bytes (hex)."""
    sha = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


def image_id(path: str | os.PathLike) -> str:
    """MONAI Label's id of a local image: its file name without the extension (``a.nii.gz`` -> ``a``)."""
    name = Path(path).name
    for ext in (".nii.gz", ".nrrd.gz", ".seg.nrrd"):
        if name.endswith(ext):
            return name[: -len(ext)]
    return Path(name).stem


@dataclass(frozen=True)
class LabeledImage:
    """One labeled image of the datastore: MONAI Label's image ``id``, the ``image`` and ``label`` paths, and the
    SHA-1 of the label file (a label saved again under the same name is other data)."""

    id: str
    image: str
    label: str
    sha1: str


def labeled_images(datalist: Iterable[Mapping[str, Any]]) -> list[LabeledImage]:
    """The datastore's labeled images (``datastore.datalist()``: ``[{"image": path, "label": path}, ...]``), by id.

    Raises:
        BadInputError: a label file that is missing (one line naming it).
    """
    out = []
    for item in datalist:
        label = Path(item["label"])
        if not label.is_file():
            raise BadInputError(f"{label}: the datastore lists this label of {item['image']} but the file is missing "
                                "(save the label again)")
        out.append(LabeledImage(image_id(item["image"]), str(item["image"]), str(label), file_sha1(label)))
    return sorted(out, key=lambda i: i.id)


def split_validation(ids: Sequence[str], previous: Sequence[str], val_fraction: float) -> tuple[list[str], list[str]]:
    """Training and validation image ids: ``round(val_fraction * n)`` held out, at least one, at most ``n - 1``.

    Validation is sticky: the images the previous run validated on (still labeled) stay held out, so that
    consecutive runs, and the served model against a new one, are scored on the same images as far as possible; the
    rest are taken in a fixed order (by a hash of the id), not by labeling order.

    Raises:
        BadInputError: fewer than two labeled images.
    """
    if len(ids) < 2:
        raise BadInputError(f"{len(ids)} labeled image(s) in the datastore: label at least 2 (one is held out to "
                            "validate the new model before it is served)")
    n_val = min(len(ids) - 1, max(1, int(round(val_fraction * len(ids)))))
    keep = [i for i in previous if i in ids][:n_val]
    rest = sorted((i for i in ids if i not in keep), key=lambda i: hashlib.sha1(i.encode()).hexdigest())
    val = keep + rest[: n_val - len(keep)]
    return [i for i in ids if i not in val], sorted(val)


def _read(path: Path) -> dict[str, Any] | None:
    try:
        content = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return content if isinstance(content, dict) else None


def write_json(path: Path, content: Mapping[str, Any]) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(content, indent=1, default=str)))


class RetrainRuns:
    """The runs folder of a bundle (``<bundle>/runs``): create, list and find runs by their records."""

    def __init__(self, bundle_dir: str | os.PathLike) -> None:
        self.root = Path(bundle_dir) / "runs"

    def records(self) -> list[dict[str, Any]]:
        """Every readable run record, oldest first (run names are start times)."""
        if not self.root.is_dir():
            return []
        found = [_read(p / RECORD) for p in sorted(self.root.iterdir()) if (p / RECORD).is_file()]
        return [r for r in found if r is not None]

    def last(self, *statuses: str) -> dict[str, Any] | None:
        """The newest record with one of ``statuses`` (any status when none given)."""
        matching = [r for r in self.records() if not statuses or r.get("status") in statuses]
        return matching[-1] if matching else None

    def resumable(self, inputs: str) -> Path | None:
        """The folder of the newest run when it stopped before its end (server stopped, training cancelled) and had
        the same ``inputs`` digest (labels, validation images, starting model, settings): the bundle resumes it from
        its last checkpoint. A run with other inputs since then, or other inputs now, starts a new run."""
        last = self.last()
        if last and last.get("status") == TRAINING and last.get("inputs") == inputs:
            return self.root / last["run"]
        return None

    def new(self) -> Path:
        """A new, empty run folder named by the time."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for k in range(1000):
            folder = self.root / (stamp if k == 0 else f"{stamp}-{k}")
            try:
                folder.mkdir(parents=True)
                return folder
            except FileExistsError:
                continue
        raise RuntimeError(f"{self.root}: cannot create a run folder for {stamp}")

    def write(self, record: Mapping[str, Any]) -> None:
        write_json(self.root / record["run"] / RECORD, record)


def served_run(models_dir: str | os.PathLike) -> str | None:
    """The run the served model came from: the run its ``model.json`` names, when that run's model is still the same
    file content (``None``: no served model, or one from elsewhere, e.g. copied in by hand)."""
    models_dir = Path(models_dir)
    record = _read(models_dir / "model.json") or {}
    run = (record.get(SERVED_KEY) or {}).get("run")
    if not run or not (models_dir / "model.pt").is_file():
        return None
    source = models_dir.parent / "runs" / run / "models" / "model.pt"
    return run if source.is_file() and file_sha1(source) == file_sha1(models_dir / "model.pt") else None


def promote(run_dir: str | os.PathLike, models_dir: str | os.PathLike, info: Mapping[str, Any]) -> Path | None:
    """Serve the validated model of ``run_dir`` (its ``models/model.pt`` + ``model.json``) from ``models_dir``.

    Each file is replaced atomically (readers see the old file or the whole new one), ``model.json`` first so that
    the weights never arrive before their settings. A served model that no run of this folder produced (copied in
    by hand, trained elsewhere) is first copied to ``models_dir/replaced_<time>/``: nothing is lost. One that a run
    produced stays in that run's folder.

    Args:
        info: recorded under :data:`SERVED_KEY` in the served ``model.json`` (run name, Dice, validation images).

    Returns:
        the folder the previous model was kept in, or ``None``.
    """
    run_dir, models_dir = Path(run_dir), Path(models_dir)
    new_pt, new_json = run_dir / "models" / "model.pt", run_dir / "models" / "model.json"
    record = dict(_read(new_json) or {})
    record[SERVED_KEY] = dict(info)
    served_pt, served_json = models_dir / "model.pt", models_dir / "model.json"
    aside = None
    if served_pt.is_file() and served_run(models_dir) is None:
        aside = models_dir / f"replaced_{time.strftime('%Y%m%d-%H%M%S')}"
        aside.mkdir(parents=True, exist_ok=True)
        for f in (served_pt, served_json):
            if f.is_file():
                shutil.copy2(f, aside / f.name)
        logger.info(f"the served model came from no run of {models_dir.parent / 'runs'}: kept in {aside}")
    write_json(served_json, record)
    atomic_write(served_pt, lambda tmp: shutil.copyfile(new_pt, tmp))
    return aside
