"""Turn a user's image source (folder, glob, MONAI datalist JSON) into a MONAI datalist."""

from __future__ import annotations

import glob
import json
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from monai.data import load_decathlon_datalist, partition_dataset
from monai.utils import optional_import

from monai_cover.errors import BadInputError, MissingFileError
from monai_cover.transforms.sequences import NIFTI_SUFFIXES, VIDEO_SUFFIXES, sequence_suffix
from monai_cover.utils import read_json

__all__ = [
    "IMAGE_SUFFIXES", "is_dicom_file", "find_images", "find_pairs", "find_sequences", "load_datalist",
    "seg_datalists", "seg_test_datalist", "holdout", "pretrain_items",
]

logger = logging.getLogger("monai_cover.data")

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


class _ScanProgress:
    """Log lines while a folder scan runs long: every ``every`` seconds how far it got, and the total at the end
    of a scan that took more than ``every`` seconds (100,000 single-file DICOMs take minutes of header reads)."""

    def __init__(self, root: Path, every: float = 5.0) -> None:
        self.root, self.every = root, every
        self.start = self.last = time.monotonic()
        self.files = 0

    def tick(self, items: int, files: int = 1) -> None:
        self.files += files
        now = time.monotonic()
        if now - self.last >= self.every:
            self.last = now
            logger.info(f"scanning {self.root}: {items} images so far ({self.files} files looked at, "
                        f"{now - self.start:.0f} s)")

    def done(self, items: int) -> None:
        elapsed = time.monotonic() - self.start
        if elapsed >= self.every:
            logger.info(f"scanned {self.root}: {items} images in {self.files} files, {elapsed:.0f} s (a datalist "
                        "JSON of them is read in seconds: scripts/make_datalist.py)")


def _dicom_items(folder: str, files: list[str], progress: _ScanProgress | None = None, found: int = 0) -> list[str]:
    """A folder of DICOM files is one series (one item), unless every file is a series of its own (single-file
    images such as 2D radiographs): then each file is an item. ``progress`` counts each header read (``found``:
    images listed before this folder)."""
    pydicom, has_pydicom = optional_import("pydicom")
    paths = [os.path.join(folder, f) for f in files if not f.startswith(".")]
    if not has_pydicom:
        return [folder]
    seen: set[str] = set()
    dicoms = []
    for path in paths:
        if progress is not None:
            progress.tick(found + len(dicoms))
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["SeriesInstanceUID"])
        except Exception:  # not DICOM (e.g. a README): ignored, as MONAI's reader does
            continue
        uid = str(getattr(ds, "SeriesInstanceUID", "") or path)
        if uid in seen:  # two files of one series: a series folder (stop here: a CT has hundreds of slices)
            return [folder]
        seen.add(uid)
        dicoms.append(path)
    return dicoms or [folder]


def _scan_folder(root: Path) -> list[str]:
    """Image files under ``root`` (recursive), and one entry per folder of DICOM files (read as a series), or per
    DICOM file where each file is its own series. Each file is classified on its own (image suffix, or the DICOM
    magic of its header), so a folder that mixes images and DICOM files is listed whole; one log line says what
    was found, by kind."""
    items: list[str] = []
    images = dicom = 0
    progress = _ScanProgress(root)
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        files = sorted(f for f in filenames if not f.startswith("."))
        pictures = [f for f in files if _is_image(Path(f))]
        series = [f for f in files if not _is_image(Path(f)) and is_dicom_file(Path(dirpath) / f)]
        if series:
            found = _dicom_items(dirpath, series, progress, len(items))
            items.extend(found)
            dicom += len(found)
        items.extend(str(Path(dirpath) / f) for f in pictures)
        images += len(pictures)
        progress.tick(len(items), len(files))
    progress.done(len(items))
    if items:
        logger.info(f"{root}: {images} image file(s) and {dicom} DICOM series or file(s)")
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
            raise MissingFileError(f"{src}: image source does not exist (give a folder, a glob or a datalist JSON).")
    if not paths:
        raise BadInputError(f"{source}: no images found (looked for {', '.join(IMAGE_SUFFIXES)} and DICOM series).")
    return [{key: p} for p in paths]


def _datalist_section(path: Path, section: str, allow_bare_list: bool = True) -> list:
    """The non-empty list ``section`` of a datalist JSON (or the JSON itself if it is a list)."""
    data = read_json(path)
    items = data.get(section) if isinstance(data, dict) else (data if allow_bare_list else None)
    if not isinstance(items, list) or not items:
        example = json.dumps({section: [{"image": "...", "label": "..."}]})
        raise BadInputError(f"{path}: no '{section}' list of items in the datalist (expected e.g. {example}).")
    return items


def _read_datalist(path: Path, key: str, section: str, base_dir) -> list[dict[str, str]]:
    items = _datalist_section(path, section)
    root = Path(base_dir) if base_dir is not None else path.parent
    out = []
    for i, item in enumerate(items):
        value = item.get(key) if isinstance(item, dict) else item
        # a list: co-registered files of one case, stacked as channels (modalities), as MONAI loads them
        many = isinstance(value, list) and value and all(isinstance(v, str) for v in value)
        if not isinstance(value, str) and not many:
            raise BadInputError(f"{path}: item {i} of '{section}' has no '{key}' path (or list of paths).")
        full = [v if os.path.isabs(v) else str(root / v) for v in value] if many else (
            value if os.path.isabs(value) else str(root / value))
        out.append({**(item if isinstance(item, dict) else {}), key: full})
    return out


def find_pairs(
    images: str | os.PathLike,
    labels: str | os.PathLike,
    image_key: str = "image",
    label_key: str = "label",
) -> list[dict[str, str]]:
    """Pair images and labels from two folders by file name (suffix ignored): ``[{image, label}, ...]``.

    Raises:
        ValueError: one line naming the folder and the unmatched files, or no pairs at all.
    """
    def stem(p: str) -> str:
        name = Path(p).name
        for suf in sorted(IMAGE_SUFFIXES, key=len, reverse=True):
            if name.lower().endswith(suf):
                return name[: -len(suf)]
        return name

    imgs = {stem(d[image_key]): d[image_key] for d in find_images(images, image_key)}
    labs = {stem(d[label_key]): d[label_key] for d in find_images(labels, label_key)}
    missing = sorted(set(imgs) - set(labs))
    if missing:
        raise BadInputError(f"{labels}: no label for {len(missing)} image(s), e.g. {missing[:3]}.")
    return [{image_key: imgs[k], label_key: labs[k]} for k in sorted(imgs)]


def load_datalist(source: str | os.PathLike, section: str) -> list[dict]:
    """Items of ``section`` ("training", "validation", "test") of a MONAI datalist JSON with image and label paths.

    MONAI's :func:`monai.data.load_decathlon_datalist` reads the items and resolves relative paths against the JSON's
    folder (a label may be a list of files, stacked as channels); this adds one-line errors naming the file for a
    missing file, section or key.

    Raises:
        MissingFileError / BadInputError: one line naming the file and the problem.
    """
    path = Path(source)
    if not path.is_file():
        raise MissingFileError(f"{path}: datalist JSON not found.")
    items = _datalist_section(path, section, allow_bare_list=False)
    for i, item in enumerate(items):
        for key in ("image", "label"):
            if not isinstance(item, dict) or key not in item:
                raise BadInputError(f"{path}: item {i} of '{section}' has no '{key}'.")
    return load_decathlon_datalist(path, is_segmentation=True, data_list_key=section, base_dir=path.parent)


def seg_test_datalist(data_file: str | os.PathLike | None = None, images_dir: str | os.PathLike | None = None,
                      labels_dir: str | os.PathLike | None = None) -> list[dict]:
    """The cases cover_seg evaluates on: the ``test`` section of ``data_file``, else the image/label pairs of
    ``images_dir`` and ``labels_dir`` (:func:`find_pairs`)."""
    if data_file:
        return load_datalist(data_file, "test")
    return find_pairs(images_dir, labels_dir)


def seg_datalists(
    data_file: str | os.PathLike | None = None,
    images_dir: str | os.PathLike | None = None,
    labels_dir: str | os.PathLike | None = None,
    val_fraction: float = 0.2,
    seed: int = 0,
) -> tuple[list[dict], list[dict]]:
    """Training and validation items for segmentation.

    From a datalist JSON (``training`` and, if present, ``validation``) or from paired image/label folders. Without a
    ``validation`` section a seeded ``val_fraction`` of the training items is held out (at least one). Items with a
    ``"group"`` (patient or study id) are held out by group: all items of a group land on one side, so two frames or
    scans of one patient never sit in both training and validation (``val_fraction`` then counts groups).
    """
    if data_file:
        train = load_datalist(data_file, "training")
        content = read_json(data_file)
        if isinstance(content, dict) and "validation" in content:  # a broken section is reported, not ignored
            return train, load_datalist(data_file, "validation")
    elif images_dir and labels_dir:
        train = find_pairs(images_dir, labels_dir)
    else:
        raise BadInputError("cover_seg: no segmentation data (set --data_file (datalist JSON) or --images_dir and "
                            "--labels_dir).")
    # an item without a group is a group of its own
    groups = [item.get("group", ("item", i)) if isinstance(item, dict) else ("item", i) for i, item in enumerate(train)]
    ids = list(dict.fromkeys(groups))
    n_val = max(1, int(round(val_fraction * len(ids)))) if len(ids) > 1 else 0
    if not n_val:
        _warn_no_holdout(len(train))
        return train, train
    # ratios given as counts, so MONAI's rounding yields exactly n_val validation groups
    _, val_ids = partition_dataset(ids, ratios=[len(ids) - n_val, n_val], shuffle=True, seed=seed)
    held = set(val_ids)
    return [t for t, g in zip(train, groups) if g not in held], [t for t, g in zip(train, groups) if g in held]


def _warn_no_holdout(n: int) -> None:
    logger.warning(f"only {n} case(s): validating on the training data, so validation scores are not held out "
                   "(add cases, or give a datalist with a 'validation' section)")


def holdout(datalist: Sequence[Any], num_val: int) -> tuple[list[Any], list[Any]]:
    """Training items and the last ``num_val`` items for validation; with too few items (``<= 2 * num_val``)
    all items train and the validation items are among them, which is logged as a warning."""
    items = list(datalist)
    if len(items) > 2 * num_val:
        return items[:-num_val], items[-num_val:]
    _warn_no_holdout(len(items))
    return items, items[-num_val:]


def find_sequences(source: str | os.PathLike, key: str = "image") -> list[dict[str, str]]:
    """The sequence files of ``source`` as ``[{key: path}, ...]``: a folder (searched recursively for NIfTI, video
    and DICOM ``.dcm`` files, each file one sequence), or whatever :func:`~monai_cover.data.find_images` takes
    (a datalist JSON, a glob, a list of paths)."""
    root = Path(source) if isinstance(source, (str, os.PathLike)) else None
    if root is None or not root.is_dir():
        return find_images(source, key)
    wanted = (*NIFTI_SUFFIXES, *VIDEO_SUFFIXES, ".dcm")
    paths = sorted(str(p) for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")
                   and sequence_suffix(p) in wanted)
    if not paths:
        raise BadInputError(f"{root}: no sequences found (looked for {', '.join(wanted)} files).")
    return [{key: p} for p in paths]


def pretrain_items(source: str | os.PathLike, frames: int = 0) -> list[dict[str, str]]:
    """cover_pretrain's training data in ``source``: its sequences (:func:`find_sequences`) when pairs of frames are
    drawn (``frames`` above 0, :func:`~monai_cover.config.check_temporal`), else its images (:func:`find_images`)."""
    return find_sequences(source) if frames else find_images(source)
