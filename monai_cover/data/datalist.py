"""Turn a user's image source (folder, glob, MONAI datalist JSON) into a MONAI datalist."""

from __future__ import annotations

import glob
import json
import os
from pathlib import Path
from typing import Sequence

__all__ = ["IMAGE_SUFFIXES", "find_images", "is_dicom_file"]

IMAGE_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd", ".png", ".jpg", ".jpeg", ".tif", ".tiff")


def is_dicom_file(path: str | os.PathLike) -> bool:
    """True for a file with the ``DICM`` magic at byte 128 (or a ``.dcm`` suffix)."""
    p = Path(path)
    if p.suffix.lower() == ".dcm":
        return True
    try:
        with open(p, "rb") as f:
            f.seek(128)
            return f.read(4) == b"DICM"
    except OSError:
        return False


def _is_image(path: Path) -> bool:
    return path.name.lower().endswith(IMAGE_SUFFIXES)


def _scan_folder(root: Path) -> list[str]:
    """Image files under ``root`` (recursive), and one entry per folder of DICOM files (read as a series)."""
    items: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        files = sorted(filenames)
        if any(is_dicom_file(Path(dirpath) / f) for f in files[:8] if not _is_image(Path(f))):
            items.append(dirpath)
            continue
        items.extend(str(Path(dirpath) / f) for f in files if _is_image(Path(f)) and not f.startswith("."))
    return items


def find_images(
    source: str | os.PathLike | Sequence[str],
    key: str = "image",
    datalist_key: str = "training",
    base_dir: str | os.PathLike | None = None,
) -> list[dict[str, str]]:
    """List the images of ``source`` as ``[{key: path}, ...]``.

    Args:
        source: a folder (searched recursively for NIfTI, NRRD, MHA/MHD, PNG/JPEG/TIFF files and DICOM series
            folders), a glob pattern, a MONAI datalist JSON (``{"training": [{"image": ...}]}`` or a list), or a
            list of paths.
        key: dictionary key of each item.
        datalist_key: section to read from a datalist JSON.
        base_dir: folder that relative datalist paths are relative to (default: the JSON's folder).

    Raises:
        FileNotFoundError / ValueError: one line naming the source and what is wrong (missing, empty, bad JSON).
    """
    if isinstance(source, (list, tuple)):
        paths = [str(p) for p in source]
    else:
        src = str(source)
        p = Path(src)
        if p.suffix.lower() == ".json" and p.is_file():
            return _read_datalist(p, key, datalist_key, base_dir)
        if p.is_dir():
            paths = _scan_folder(p)
        elif any(ch in src for ch in "*?["):
            paths = sorted(glob.glob(src, recursive=True))
        elif p.is_file():
            paths = [src]
        else:
            raise FileNotFoundError(f"{src}: image source does not exist (give a folder, a glob or a datalist JSON).")
    if not paths:
        raise ValueError(f"{source}: no images found (looked for {', '.join(IMAGE_SUFFIXES)} and DICOM series).")
    return [{key: p} for p in paths]


def _read_datalist(path: Path, key: str, section: str, base_dir) -> list[dict[str, str]]:
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not valid JSON ({e}).") from None
    items = data.get(section) if isinstance(data, dict) else data
    if not isinstance(items, list) or not items:
        raise ValueError(f"{path}: no '{section}' list of items in the datalist.")
    root = Path(base_dir) if base_dir is not None else path.parent
    out = []
    for i, item in enumerate(items):
        value = item.get(key) if isinstance(item, dict) else item
        if not isinstance(value, str):
            raise ValueError(f"{path}: item {i} of '{section}' has no '{key}' path.")
        full = value if os.path.isabs(value) else str(root / value)
        out.append({**(item if isinstance(item, dict) else {}), key: full})
    return out
