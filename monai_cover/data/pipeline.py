"""Running a loading pipeline over datalist items with one-line errors per bad file.

* :func:`filter_readable`: opt-in pre-validation of a datalist (before ``CacheDataset``) that skips bad items and
  logs ``"skipped 3 of 120 files: ..."``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

from monai_cover.errors import BadInputError, find_bad_input, first_line
from monai_cover.transforms.io import SafeLoadImaged, display_path

__all__ = ["filter_readable", "usable_items"]

logger = logging.getLogger("monai_cover.data")


def _item_path(item: Any, key: Hashable | None) -> str:
    if isinstance(item, Mapping):
        if key is not None and key in item:
            return display_path(item[key])
        for v in item.values():
            if isinstance(v, (str, os.PathLike, list, tuple)):
                return display_path(v)
    return display_path(item)


def filter_readable(
    datalist: Sequence[Any],
    transform: Callable[[Any], Any] | None = None,
    key: Hashable | None = "image",
    log: logging.Logger | None = None,
    allow_empty: bool = False,
) -> tuple[list[Any], list[tuple[str, str]]]:
    """Opt-in skipping of bad files: run ``transform`` once on every item (e.g. before a ``CacheDataset``).

    Args:
        datalist: items such as ``[{"image": path}, ...]``.
        transform: the loading/checking pipeline (e.g. :func:`monai_cover.data.pretrain_transforms`); default:
            :class:`SafeLoadImaged` of ``key`` only.
        key: item key whose path is reported for a skipped item.
        log: logger (default ``monai_cover.data``); each skip is a warning, then one summary line.
        allow_empty: return an empty ``good_items`` instead of raising when no item is usable (the caller reports).

    Returns:
        ``(good_items, skipped)`` with ``skipped`` a list of ``(path, reason)``.

    Raises:
        BadInputError: when no item is usable.
    """
    log = log or logger
    transform = transform or SafeLoadImaged(key, image_only=True)
    good, skipped = [], []
    for item in datalist:
        try:
            transform(item)
        except Exception as e:
            bad = find_bad_input(e)
            path = _item_path(item, key)
            if bad is not None:  # its message names the offending file (the image, or e.g. its label)
                msg = str(bad)
                path, reason = msg.split(": ", 1) if ": " in msg else (path, msg)
            else:
                root = e
                while root.__cause__ is not None:
                    root = root.__cause__
                reason = first_line(root)
            skipped.append((path, reason))
            log.warning("skipping %s: %s", path, reason)
            continue
        good.append(item)
    if skipped:
        desc = "; ".join(f"{p} ({r})" for p, r in skipped[:5]) + ("; ..." if len(skipped) > 5 else "")
        log.warning("skipped %d of %d files: %s", len(skipped), len(datalist), desc)
    if datalist and not good and not allow_empty:
        path, reason = skipped[0]
        raise BadInputError(f"{path}: {reason.rstrip('.')} (and all {len(datalist)} datalist items are unusable).")
    return good, skipped


def usable_items(datalist: Sequence[Any], transform: Callable[[Any], Any], skip_bad_files: bool = False,
                 key: Hashable | None = "image") -> list[Any]:
    """The items a run uses: all of ``datalist``, or with ``skip_bad_files`` those that pass ``transform``
    (:func:`filter_readable`: each skipped file logged, an error if none is left)."""
    return filter_readable(datalist, transform, key=key)[0] if skip_bad_files else list(datalist)
