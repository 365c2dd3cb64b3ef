"""Which model produced the results in a folder: evaluation and label transfer write ``producer.json`` beside their
CSVs and refuse, in one line, to overwrite the results of another model unless told to."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from monai.utils import str2bool

from monai_cover.errors import RunMismatchError
from monai_cover.utils import atomic_write, is_main_process

__all__ = ["RECORD", "claim_results", "file_digest"]

RECORD = "producer.json"


def file_digest(path: str | os.PathLike | None) -> str | None:
    """SHA-256 of a file's bytes (``None`` for no file)."""
    if path is None:
        return None
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


def claim_results(folder: str | os.PathLike, producer: Mapping[str, Any], overwrite: bool | str = False,
                  files: Mapping[str, str | os.PathLike | None] = ()) -> bool:
    """Record ``producer`` (what made the results: model path, settings) and the SHA-256 of each of ``files``
    (``name: path``, e.g. the model file) as ``<folder>/producer.json``, before results are written there.

    Raises:
        RunMismatchError: ``folder`` holds results of another producer, or results without a record, and not
            ``overwrite`` (one line naming what differs). Returns ``True`` (a config ``initialize`` step).
    """
    folder = Path(folder)
    # what the results depend on: the producer's settings and each file's content (not where the file is)
    identity = json.loads(json.dumps({**producer, **{f"{name}_sha256": file_digest(path)
                                                     for name, path in dict(files).items()}}, default=str))
    record = {**identity, "files": {name: None if path is None else str(path) for name, path in dict(files).items()}}
    existing = [p for p in folder.iterdir() if p.name != RECORD] if folder.is_dir() else []
    if existing and not str2bool(overwrite):
        old = json.loads((folder / RECORD).read_text()) if (folder / RECORD).is_file() else None
        changed = ["no record of what made them"] if old is None else [
            f"{k} {old.get(k)} -> {identity.get(k)}" for k in sorted({*old, *identity} - {"files"})
            if old.get(k) != identity.get(k)]
        if changed:
            raise RunMismatchError(f"{folder}: holds the results of another model ({'; '.join(changed)}); nothing "
                                   "was evaluated (choose another --output_dir, or pass --overwrite True to replace "
                                   "them)")
    if is_main_process():
        atomic_write(folder / RECORD, lambda tmp: Path(tmp).write_text(json.dumps(record, indent=1)))
    return True
