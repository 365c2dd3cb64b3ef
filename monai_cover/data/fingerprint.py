"""What the files of a datalist hold, as one digest: a run record compares it, so files replaced in place under the
same names (new pixels, inverted labels) make a rerun a different run."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["content_fingerprint"]

#: files up to this size are hashed whole; larger ones by their size and three blocks (start, middle, end)
WHOLE = 1 << 20
BLOCK = 1 << 16


def _file_digest(path: Path) -> str:
    size = path.stat().st_size
    sha = hashlib.sha1(str(size).encode())
    with open(path, "rb") as f:
        if size <= WHOLE:
            sha.update(f.read())
        else:
            for start in (0, size // 2 - BLOCK // 2, size - BLOCK):
                f.seek(start)
                sha.update(f.read(BLOCK))
    return sha.hexdigest()


def _contents(value: Any) -> Any:
    """``value`` with every existing file replaced by its digest (a folder, e.g. a DICOM series, by its files')."""
    if isinstance(value, Mapping):
        return {str(k): _contents(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [_contents(v) for v in value]
    if isinstance(value, (str, os.PathLike)) and os.path.exists(value):
        path = Path(value)
        if path.is_dir():
            return [_file_digest(f) for f in sorted(path.rglob("*")) if f.is_file()]
        return _file_digest(path)
    return value


def content_fingerprint(value: Any) -> str:
    """SHA-1 of what the files named in ``value`` (a datalist, a path, nested lists and mappings) hold, in order; not
    of their names or modification times (a copied or touched file is the same file)."""
    import json

    return hashlib.sha1(json.dumps(_contents(value), sort_keys=True, default=str).encode()).hexdigest()
