"""Where decoded training images live: in memory, in a disk cache, or nowhere (decoded on every read).

``"memory"`` (MONAI ``CacheDataset``) decodes every image before the first iteration and keeps it in RAM: fastest
per step, but an archive of thousands of CT volumes does not fit. ``"disk"`` (MONAI ``PersistentDataset``) decodes
each image the first time it is read (training starts at once), writes the result under ``cache_dir`` and reads it
from there on every later epoch, run and DDP rank. ``"none"`` (``Dataset``) decodes on every read; with
``num_workers`` DataLoader processes that can keep up for 2D images.

A disk cache entry is keyed by the item's files *and their size and modification time*, and by the settings that
shape the cached arrays (``settings``: sizes, spacing, intensity scaling, plus the package versions), so a changed
file or setting is decoded again instead of silently read stale.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import monai
from monai.data import CacheDataset, Dataset, PersistentDataset
from monai.data.utils import pickle_hashing

import monai_cover
from monai_cover.config.declarations import CACHE_MODES
from monai_cover.errors import OutputWriteError, first_line

__all__ = ["file_state_hash", "training_dataset"]


def _file_state(value: Any) -> Any:
    """A path's identity and state: ``(path, size, mtime_ns)``; a folder (DICOM series) by its files' states."""
    if isinstance(value, (list, tuple)):
        return [_file_state(v) for v in value]
    if not isinstance(value, (str, os.PathLike)) or not os.path.exists(value):
        return value
    path = Path(value)
    if path.is_dir():
        stats = [f.stat() for f in sorted(path.rglob("*")) if f.is_file()]
        return (str(path), len(stats), sum(s.st_size for s in stats), max((s.st_mtime_ns for s in stats), default=0))
    st = path.stat()
    return (str(path), st.st_size, st.st_mtime_ns)


def file_state_hash(item: Any) -> bytes:
    """Cache key of a data item: its values with every existing path replaced by its size and modification time
    (MONAI's default key is the path alone, which would serve a replaced file's old pixels)."""
    if isinstance(item, Mapping):
        return pickle_hashing({k: _file_state(v) for k, v in item.items()})
    return pickle_hashing(_file_state(item))


def _settings_hash(settings: Mapping[str, Any], _transforms: Any) -> bytes:
    # replaces MONAI's transform hash, which falls back to class names (a changed load_size would not show)
    state = {"settings": dict(settings), "monai": monai.__version__, "monai_cover": monai_cover.__version__}
    return pickle_hashing(json.loads(json.dumps(state, default=str)))


def training_dataset(data: Sequence[Any], transform: Callable, cache: str = "memory",
                     cache_dir: str | os.PathLike | None = None, settings: Mapping[str, Any] | None = None,
                     cache_rate: float = 1.0, num_workers: int = 0) -> Dataset:
    """The dataset of ``data`` through ``transform`` for the ``cache`` mode (module docstring).

    Args:
        data: items (dicts of file paths).
        transform: deterministic loading followed by random transforms; ``"memory"`` and ``"disk"`` keep the
            output of the deterministic part.
        cache: ``"memory"``, ``"disk"`` or ``"none"``.
        cache_dir: folder of the disk cache (created; shared by runs and DDP ranks with the same settings).
        settings: what shapes the cached arrays (sizes, spacing, intensity), part of every disk cache key.
        cache_rate, num_workers: ``CacheDataset``'s (``"memory"`` only).
    """
    if cache == "memory":
        return CacheDataset(data, transform, cache_rate=cache_rate, num_workers=num_workers)
    if cache == "disk":
        if cache_dir is None:
            raise ValueError("training_dataset: cache 'disk' needs a cache_dir.")
        try:
            Path(cache_dir).mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise OutputWriteError(f"{cache_dir}: cannot create the disk cache folder ({first_line(e)}); choose "
                                   "another --cache_dir") from None
        return PersistentDataset(data, transform, cache_dir=cache_dir, hash_func=file_state_hash,
                                 hash_transform=partial(_settings_hash, settings or {}))
    if cache == "none":
        return Dataset(data, transform)
    raise ValueError(f"training_dataset: cache must be one of {', '.join(CACHE_MODES)}, got {cache!r}.")
