"""Input checks for messy clinical data: every bad file gives ONE line naming the file and the problem.

* :class:`SafeLoadImaged` / :class:`SafeLoadImage`: MONAI loading, but an unreadable, corrupt or truncated file (or a
  DICOM folder with no or several series) raises :class:`BadInputError` ``"<path>: <problem>"``.
* :class:`CheckImaged` / :class:`CheckImage`: after channel-first loading, checks channels (RGB/RGBA -> gray),
  spatial rank, NaN/Inf, constant images, label values, image/label shape and geometry.
* :class:`CheckedCompose`: a ``Compose`` that re-raises a :class:`BadInputError` from any of its transforms as is,
  instead of MONAI's ``RuntimeError("applying transform ...")`` chain.
* :func:`filter_readable`: opt-in pre-validation of a datalist (before ``CacheDataset``) that skips bad items and
  logs ``"skipped 3 of 120 files: ..."``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import Compose, LoadImage, LoadImaged, MapTransform, Transform
from monai.utils import optional_import

from monai_cover.errors import CoverError, find_cover_error, first_line

__all__ = [
    "BadInputError", "CheckImage", "CheckImaged", "CheckedCompose", "SafeLoadImage", "SafeLoadImaged",
    "check_dicom_folder", "filter_readable",
]

logger = logging.getLogger("monai_cover.data")

_RASTER_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


class BadInputError(CoverError, ValueError):
    """A data file that cannot be used; the message is one line, ``"<path>: <problem>"``."""


def _display(source: Any) -> str:
    if isinstance(source, (list, tuple)):
        return ", ".join(_display(s) for s in source)
    return os.fspath(source) if isinstance(source, (str, os.PathLike)) else str(source)


def source_name(img: Any, default: str = "<array>") -> str:
    """The file an image came from (MetaTensor ``filename_or_obj``), else ``default``."""
    if isinstance(img, MetaTensor):
        name = img.meta.get("filename_or_obj")
        if name is not None and str(name):
            return _display(name)
    return default


def find_bad_input(e: BaseException | None) -> BadInputError | None:
    """The :class:`BadInputError` in an exception's cause/context chain (MONAI wraps transform errors)."""
    found = find_cover_error(e)
    return found if isinstance(found, BadInputError) else None


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
        pos, ori = getattr(ds, "ImagePositionPatient", None), getattr(ds, "ImageOrientationPatient", None)
        if pos is not None and ori is not None and len(ori) == 6:
            normal = np.cross(np.asarray(ori[:3], float), np.asarray(ori[3:], float))
            positions.append(float(np.dot(normal, np.asarray(pos, float))))
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


def _safe_load(loader: LoadImage, filename: Any, reader=None):
    name = _display(filename)
    if isinstance(filename, (str, os.PathLike)):
        path = Path(filename).expanduser()
        if not path.exists():
            raise BadInputError(f"{name}: file not found.")
        if path.is_dir():
            check_dicom_folder(path)
    try:
        return loader(filename, reader)
    except BadInputError:
        raise
    except Exception as e:
        raise BadInputError(f"{name}: cannot read image ({first_line(e)}).") from None


class SafeLoadImage(LoadImage):
    """:class:`monai.transforms.LoadImage` raising one-line :class:`BadInputError` ``"<path>: <problem>"``."""

    def __call__(self, filename, reader=None):
        return _safe_load(super().__call__, filename, reader)


class SafeLoadImaged(LoadImaged):
    """:class:`monai.transforms.LoadImaged` raising one-line :class:`BadInputError` ``"<path>: <problem>"``.

    Same arguments and outputs as ``LoadImaged``; a missing, corrupt or truncated file, or a DICOM folder with no
    or several series, gives ``BadInputError`` (a ``ValueError``) instead of MONAI's multi-reader traceback.
    """

    def __call__(self, data, reader=None):
        d = dict(data)
        for key, meta_key, meta_key_postfix in self.key_iterator(d, self.meta_keys, self.meta_key_postfix):
            out = _safe_load(self._loader, d[key], reader)
            if self._loader.image_only:
                d[key] = out
                continue
            d[key] = out[0]
            meta_key = meta_key or f"{key}_{meta_key_postfix}"
            if meta_key in d and not self.overwriting:
                raise KeyError(f"Metadata with key {meta_key} already exists and overwriting=False.")
            d[meta_key] = out[1]
        return d


def _shape(img) -> tuple[int, ...]:
    return tuple(int(s) for s in img.shape)


class CheckImage(Transform):
    """Check (and where harmless, fix) one channel-first image; errors are one-line :class:`BadInputError`.

    Args:
        spatial_dims: expected spatial rank (2 or 3).
        channels: expected channel count (``None``: any).
        rgb_to_gray: convert a 2D RGB/RGBA image (3 or 4 channels where 1 is expected) to gray by averaging the
            R, G, B channels (alpha is ignored); ``False`` makes it an error.
        check_constant: reject images of constant intensity (nothing to learn, the valid mask would be empty).
    """

    def __init__(
        self, spatial_dims: int, channels: int | None = 1, rgb_to_gray: bool = True, check_constant: bool = True,
    ) -> None:
        self.spatial_dims, self.channels = spatial_dims, channels
        self.rgb_to_gray, self.check_constant = rgb_to_gray, check_constant

    def __call__(self, img, name: str | None = None):
        name = name or source_name(img)
        img = self.check_channels(img, name)
        check_rank(img, self.spatial_dims, name)
        check_finite(img, name)
        if self.check_constant and img.numel() and bool(img.min() == img.max()):
            raise BadInputError(f"{name}: constant intensity: nothing to learn (empty valid mask).")
        return img

    def check_channels(self, img, name: str, label: bool = False):
        c = int(img.shape[0])
        if self.channels is None or c == self.channels:
            return img
        rgb = self.channels == 1 and c in (3, 4) and img.ndim - 1 == 2 == self.spatial_dims
        if rgb and self.rgb_to_gray:
            if not label:
                x = img[:3]
                return _as_gray(x.mean(0, keepdim=True, dtype=x.dtype if x.is_floating_point() else torch.float32))
            if bool((img[1:3] == img[:1]).all()):  # gray label saved as RGB
                return _as_gray(img[:1])
            raise BadInputError(f"{name}: color label image ({c} channels that differ), expected a 1-channel map.")
        what = "RGB/RGBA image" if rgb else f"{img.ndim}D image with {c} channels/volumes, shape {_shape(img)}"
        hint = " (rgb_to_gray=False)" if rgb else ""
        raise BadInputError(f"{name}: {what}, expected {self.channels} channel(s){hint}.")


def _as_gray(img):
    """Record that a converted RGB image has no channel axis of its own any more: MONAI's writers otherwise put the
    prediction's single channel where the colours were and fail ("SaveImage cannot find a suitable writer")."""
    if isinstance(img, MetaTensor):
        img.meta = dict(img.meta)
        img.meta["original_channel_dim"] = float("nan")  # what LoadImage records for a gray PNG
    return img


def check_rank(img, spatial_dims: int, name: str) -> None:
    if img.ndim - 1 != spatial_dims:
        raise BadInputError(
            f"{name}: {img.ndim - 1}D image (channel-first shape {_shape(img)}), expected {spatial_dims}D."
        )


def check_finite(img, name: str) -> None:
    t = torch.as_tensor(img)
    if t.is_floating_point() and not bool(torch.isfinite(t).all()):
        n_nan, n_inf = int(torch.isnan(t).sum()), int(torch.isinf(t).sum())
        raise BadInputError(f"{name}: non-finite intensities ({n_nan} NaN and {n_inf} Inf voxels).")


def check_label_values(lbl, name: str, num_classes: int | None, multilabel: bool) -> None:
    """Multi-class: values in ``range(num_classes)`` (skipped if ``None``); multi-label: values in {0, 1, 255}."""
    if not multilabel and num_classes is None:
        return
    vals = torch.unique(torch.as_tensor(lbl).detach().cpu()).double()
    if multilabel:
        bad = vals[(vals != 0) & (vals != 1) & (vals != 255)]
        expected = "{0, 1, 255} (multi-label masks)"
    else:
        bad = vals[(vals < 0) | (vals >= num_classes) | (vals != torch.round(vals))]
        expected = f"0..{num_classes - 1} (num_classes={num_classes})"
    if bad.numel():
        shown = ", ".join(f"{v:g}" for v in bad[:5].tolist()) + (", ..." if bad.numel() > 5 else "")
        raise BadInputError(f"{name}: label values [{shown}] outside {expected}.")


class CheckImaged(MapTransform):
    """Dictionary checks after channel-first loading (and 3D orientation); one-line :class:`BadInputError` each.

    Image keys (``keys``): channel count (2D RGB/RGBA -> gray with ``rgb_to_gray``), spatial rank ``spatial_dims``,
    no NaN/Inf, not constant. Label keys (``label_key``): one channel (multi-class; a gray label saved as RGB is
    reduced), spatial rank, no NaN/Inf, values in ``range(num_classes)`` (multi-class, if given) or {0, 1, 255}
    (``multilabel``), the same spatial shape as the first image, and (both MetaTensors, ``affine_atol`` not
    ``None``) the same affine within ``affine_atol``.
    """

    def __init__(
        self,
        keys: KeysCollection,
        spatial_dims: int,
        channels: int | None = 1,
        label_key: str | Sequence[str] | None = None,
        num_classes: int | None = None,
        multilabel: bool = False,
        rgb_to_gray: bool = True,
        check_constant: bool = True,
        affine_atol: float | None = 1e-3,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.checker = CheckImage(spatial_dims, channels, rgb_to_gray, check_constant)
        self.label_keys: list[Hashable] = (
            [] if label_key is None else [label_key] if isinstance(label_key, str) else list(label_key)
        )
        self.num_classes, self.multilabel, self.affine_atol = num_classes, multilabel, affine_atol

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        ref_key = None
        for key in self.key_iterator(d):
            d[key] = self.checker(d[key], source_name(d[key], default=str(key)))
            ref_key = ref_key if ref_key is not None else key
        for key in self.label_keys:
            if key not in d:
                if self.allow_missing_keys:
                    continue
                raise KeyError(f"CheckImaged: label key {key!r} not in the data (keys: {list(d)}).")
            lbl = d[key]
            name = source_name(lbl, default=str(key))
            if not self.multilabel:
                lbl = self.checker.check_channels(lbl, name, label=True)
            check_rank(lbl, self.checker.spatial_dims, name)
            check_finite(lbl, name)
            check_label_values(lbl, name, self.num_classes, self.multilabel)
            if ref_key is not None:
                self._check_geometry(d[ref_key], lbl, name)
            d[key] = lbl
        return d

    def _check_geometry(self, img, lbl, name: str) -> None:
        img_name = source_name(img, default="image")
        if tuple(img.shape[1:]) != tuple(lbl.shape[1:]):
            raise BadInputError(
                f"{name}: label spatial shape {_shape(lbl)[1:]} does not match image {img_name} {_shape(img)[1:]}."
            )
        if self.affine_atol is None or not (isinstance(img, MetaTensor) and isinstance(lbl, MetaTensor)):
            return
        a, b = img.affine.double().cpu(), lbl.affine.double().cpu()
        if a.shape != b.shape or not torch.allclose(a, b, rtol=0.0, atol=self.affine_atol):
            diff = float((a - b).abs().max()) if a.shape == b.shape else float("nan")
            raise BadInputError(
                f"{name}: label geometry (affine) differs from image {img_name} (max difference {diff:.3g}); "
                "resample the label onto the image grid."
            )


class CheckedCompose(Compose):
    """``Compose`` that surfaces a :class:`BadInputError` raised by any of its transforms as is (one line).

    MONAI wraps transform errors in ``RuntimeError("applying transform <...>")``; here that chain is cut and the
    one-line :class:`BadInputError` is raised instead. Other errors are unchanged.
    """

    def __call__(self, input_, *args, **kwargs):
        try:
            return super().__call__(input_, *args, **kwargs)
        except Exception as e:
            bad = find_bad_input(e)
            if bad is None or bad is e:
                raise
            raise BadInputError(str(bad)) from None


def _item_path(item: Any, key: Hashable | None) -> str:
    if isinstance(item, Mapping):
        if key is not None and key in item:
            return _display(item[key])
        for v in item.values():
            if isinstance(v, (str, os.PathLike, list, tuple)):
                return _display(v)
    return _display(item)


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

