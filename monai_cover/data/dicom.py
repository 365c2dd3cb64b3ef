"""DICOM series checks: a folder given as one image must hold exactly one series, with no missing slices."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from monai.utils import optional_import

from monai_cover.errors import BadInputError

__all__ = ["check_dicom_folder", "slice_position"]


def slice_position(ds) -> float | None:
    """Where a DICOM slice lies along its normal (mm): ``ImagePositionPatient`` projected on the cross product of
    ``ImageOrientationPatient``'s row and column directions; ``None`` without them (e.g. a radiograph)."""
    pos, ori = getattr(ds, "ImagePositionPatient", None), getattr(ds, "ImageOrientationPatient", None)
    if pos is None or ori is None or len(ori) != 6:
        return None
    normal = np.cross(np.asarray(ori[:3], float), np.asarray(ori[3:], float))
    return float(np.dot(normal, np.asarray(pos, float)))


def check_dicom_folder(folder: str | os.PathLike) -> None:
    """Raise :class:`BadInputError` unless ``folder`` holds DICOM files of exactly one series.

    Needs ``pydicom``; without it only the "no files" case is checked (MONAI's reader reports the rest).
    """
    files = sorted(p for p in Path(folder).iterdir() if p.is_file() and not p.name.startswith("."))
    if not files:
        raise BadInputError(f"{folder}: empty folder (expected the files of one DICOM series).")
    pydicom, has_pydicom = optional_import("pydicom")
    if not has_pydicom:
        return
    series: dict[str, int] = {}
    positions: list[float] = []
    tags = ["SeriesInstanceUID", "ImagePositionPatient", "ImageOrientationPatient"]
    for f in files:
        try:
            ds = pydicom.dcmread(f, stop_before_pixels=True, specific_tags=tags)
        except Exception:  # not DICOM (e.g. a README): ignored, as MONAI's reader does
            continue
        uid = str(getattr(ds, "SeriesInstanceUID", "") or "<no SeriesInstanceUID>")
        series[uid] = series.get(uid, 0) + 1
        z = slice_position(ds)
        if z is not None:
            positions.append(z)
    if not series:
        raise BadInputError(f"{folder}: no DICOM files in folder ({len(files)} other file(s)).")
    if len(series) > 1:
        desc = ", ".join(f"{uid} ({n} files)" for uid, n in list(series.items())[:3])
        raise BadInputError(
            f"{folder}: folder mixes {len(series)} DICOM series ({desc}); put each series in its own folder."
        )
    _check_slice_gaps(folder, positions)


def _check_slice_gaps(folder: str | os.PathLike, positions: list[float]) -> None:
    """A series whose slice positions (mm along the slice normal) skip a step is missing slices."""
    if len(positions) < 3:
        return
    z = np.sort(np.asarray(positions))
    steps = np.diff(z)
    step = float(np.median(steps))
    if step <= 0:
        raise BadInputError(f"{folder}: DICOM slices share one position ({z[0]:.1f} mm): duplicated slices?")
    big = np.nonzero(steps > 1.5 * step)[0]
    if big.size:
        i = int(big[0])
        missing = int(round(float(steps[big].sum()) / step)) - big.size
        raise BadInputError(f"{folder}: DICOM series is missing about {missing} slice(s): gap of {steps[i]:.1f} mm "
                            f"between {z[i]:.1f} and {z[i + 1]:.1f} mm (slice spacing {step:.1f} mm).")
