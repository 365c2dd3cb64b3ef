"""Sequences (cine MR, ultrasound loops, fluoroscopy and endoscopy video) as channel-first arrays ``(T, *S)``.

Time is the channel axis, as co-registered modalities are (``--modalities``): frame ``t`` of a sequence is channel
``t``, so the views of a pair can come from two frames of one case. Formats:

* NIfTI with time as the last axis: 2D+t ``(X, Y, T)`` or ``(X, Y, 1, T)``, 3D+t ``(X, Y, Z, T)``;
* multi-frame DICOM (one file, ``NumberOfFrames`` > 1; colour frames averaged to gray);
* video files (``.mp4``, ``.avi``, ``.mov``, ``.mkv``, ``.gif``) through imageio with PyAV (``pip install
  monai-cover[video]``); colour frames averaged to gray.

Every expected failure is one :class:`~monai_cover.errors.BadInputError` line naming the file: unreadable, not a
sequence of the expected dimensionality, or fewer than 2 frames.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.data import MetaTensor
from monai.transforms import MapTransform, Randomizable

from monai_cover.errors import BadInputError, first_line

__all__ = [
    "NIFTI_SUFFIXES", "VIDEO_SUFFIXES", "LoadSequence", "LoadSequenced", "RandFrameWindowd", "load_frame_label",
    "load_sequence", "sequence_suffix",
]

#: file name endings read as video
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".gif")
NIFTI_SUFFIXES = (".nii", ".nii.gz")


def sequence_suffix(path: Path) -> str:
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


def _gray(frames: np.ndarray, rgb: bool) -> np.ndarray:
    """``(T, *S, 3|4)`` colour frames -> ``(T, *S)`` by averaging R, G, B (alpha ignored)."""
    return frames[..., :3].mean(-1) if rgb else frames


def _nifti(path: Path, spatial_dims: int) -> tuple[np.ndarray, np.ndarray]:
    import nibabel as nib

    img = nib.load(str(path))
    data = np.asarray(img.dataobj, dtype=np.float32)
    if spatial_dims == 2 and data.ndim == 4 and data.shape[2] == 1:
        data = data[:, :, 0]  # (X, Y, 1, T): one slice through time
    if data.ndim != spatial_dims + 1:
        raise BadInputError(f"{path}: shape {data.shape} is not a {spatial_dims}D+t NIfTI (time as the last axis: "
                            f"{'(X, Y, T) or (X, Y, 1, T)' if spatial_dims == 2 else '(X, Y, Z, T)'}).")
    affine = np.asarray(img.affine, dtype=np.float64)
    return np.moveaxis(data, -1, 0), affine


def _dicom(path: Path, spatial_dims: int) -> tuple[np.ndarray, np.ndarray]:
    import pydicom

    ds = pydicom.dcmread(str(path))
    frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    if spatial_dims != 2:
        raise BadInputError(f"{path}: a multi-frame DICOM is a 2D+t sequence (use --spatial_dims 2).")
    pixels = np.asarray(ds.pixel_array, dtype=np.float32)
    rgb = int(getattr(ds, "SamplesPerPixel", 1) or 1) > 1
    if frames == 1:
        pixels = pixels[None]
    pixels = _gray(pixels, rgb)  # (T, rows, columns)
    spacing = [float(s) for s in getattr(ds, "PixelSpacing", [1.0, 1.0])]
    affine = np.diag([spacing[0], spacing[1], 1.0, 1.0])
    return pixels, affine


def _video(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        import av  # noqa: F401  (imageio's PyAV plugin)
        import imageio.v3 as iio
    except ImportError:
        raise BadInputError(f"{path}: reading video needs PyAV and imageio: pip install monai-cover[video]") from None
    frames = np.asarray(iio.imread(str(path), plugin="pyav"), dtype=np.float32)  # (T, rows, columns[, 3])
    return _gray(frames, frames.ndim == 4), np.eye(4)


def load_sequence(path: str | os.PathLike, spatial_dims: int = 2) -> MetaTensor:
    """Read one sequence file as a channel-first ``(T, *S)`` float32 MetaTensor (frames along the first axis).

    Args:
        path: NIfTI (time last), multi-frame DICOM, or video file.
        spatial_dims: 2 (2D+t: cine slice, ultrasound, video) or 3 (3D+t NIfTI).

    Returns:
        ``(T, *S)`` with the file's affine (NIfTI), pixel spacing (DICOM) or identity (video) and
        ``filename_or_obj``; ``T >= 2``.

    Raises:
        BadInputError: missing or unreadable file, wrong dimensionality, fewer than 2 frames (one line each).
    """
    p = Path(path)
    if not p.is_file():
        raise BadInputError(f"{p}: file not found.")
    suffix = sequence_suffix(p)
    try:
        if suffix in NIFTI_SUFFIXES:
            frames, affine = _nifti(p, spatial_dims)
        elif suffix in VIDEO_SUFFIXES:
            if spatial_dims != 2:
                raise BadInputError(f"{p}: a video is a 2D+t sequence (use --spatial_dims 2).")
            frames, affine = _video(p)
        elif suffix in (".dcm", ".dicom", "") or _has_dicom_preamble(p):
            frames, affine = _dicom(p, spatial_dims)
        else:  # a picture or a single volume: say what a sequence is instead of pydicom's "use force=True"
            raise BadInputError(f"{p}: not a sequence file ({suffix} is one image); sequences are NIfTI 2D+t / 3D+t "
                                f"({', '.join(NIFTI_SUFFIXES)}), multi-frame DICOM or video "
                                f"({', '.join(VIDEO_SUFFIXES)}); single images pretrain without --temporal_gap.")
    except BadInputError:
        raise
    except Exception as e:
        raise BadInputError(f"{p}: cannot read a sequence ({first_line(e)}).") from None
    if frames.shape[0] < 2:
        raise BadInputError(f"{p}: {frames.shape[0]} frame: a sequence needs at least 2 (pretrain single images "
                            "without the temporal setting).")
    if not np.isfinite(frames).all():
        raise BadInputError(f"{p}: non-finite intensities.")
    return MetaTensor(torch.as_tensor(np.ascontiguousarray(frames)), affine=torch.as_tensor(affine),
                      meta={"filename_or_obj": str(p), "num_frames": int(frames.shape[0])})


def _has_dicom_preamble(path: Path) -> bool:
    """Whether the file starts like a DICOM file (``DICM`` after the 128-byte preamble), whatever its name."""
    with open(path, "rb") as f:
        return f.read(132)[128:] == b"DICM"


def load_frame_label(path: str | os.PathLike, spatial_shape: tuple[int, ...]) -> torch.Tensor:
    """Read the label of one frame in the axis order :func:`load_sequence` gives its frames: NIfTI ``(X, Y[, Z])``
    (a trailing axis of 1 dropped), images (PNG, ...) and single-frame DICOM ``(rows, columns)``.

    Returns:
        ``(1, *spatial_shape)`` int64 labels (rounded).

    Raises:
        BadInputError: missing, unreadable, non-integer-valued or not of the frames' shape (one line).
    """
    p = Path(path)
    if not p.is_file():
        raise BadInputError(f"{p}: label file not found.")
    try:
        if sequence_suffix(p) in NIFTI_SUFFIXES:
            import nibabel as nib

            data = np.asarray(nib.load(str(p)).dataobj)
            while data.ndim > len(spatial_shape) and data.shape[-1] == 1:
                data = data[..., 0]
        elif p.suffix.lower() in (".dcm", "") or sequence_suffix(p) == ".dicom":
            import pydicom

            data = np.asarray(pydicom.dcmread(str(p)).pixel_array)
        else:
            from PIL import Image

            with Image.open(p) as im:
                data = np.asarray(im.convert("L") if im.mode not in ("L", "I", "I;16") else im)
    except Exception as e:
        raise BadInputError(f"{p}: cannot read a label ({first_line(e)}).") from None
    if tuple(data.shape) != tuple(spatial_shape):
        raise BadInputError(f"{p}: label of shape {tuple(data.shape)} does not match the frames' {tuple(spatial_shape)}"
                            " (one frame's label, in the sequence's geometry).")
    if not np.isfinite(data).all() or (data < 0).any():
        raise BadInputError(f"{p}: a label must hold class numbers 0, 1, 2, ...")
    fractional = data[np.abs(data - np.rint(data)) > 1e-3] if np.issubdtype(data.dtype, np.floating) else data[:0]
    if fractional.size:  # a probability map rounded to labels would be all background
        raise BadInputError(f"{p}: label values such as {float(fractional.flat[0]):.3g} are not class numbers "
                            "0, 1, 2, ... (a probability map? threshold it into a label first).")
    return torch.as_tensor(np.rint(data).astype(np.int64))[None]


def _too_short(name: Any, t_len: int, frames: int) -> BadInputError:
    return BadInputError(f"{name}: {t_len} frames, fewer than the {frames} that --temporal_gap {frames - 1} pairs "
                         "across (lower --temporal_gap or leave the file out).")


class LoadSequence:
    """Array transform: a file path -> :func:`load_sequence` ``(T, *S)``; with ``min_frames``, a shorter
    sequence is a one-line :class:`~monai_cover.errors.BadInputError` here, when it is decoded (before training
    when images are cached, and in the ``--skip_bad_files`` pre-check), not when a batch first draws it."""

    def __init__(self, spatial_dims: int = 2, min_frames: int = 2) -> None:
        self.spatial_dims, self.min_frames = spatial_dims, int(min_frames)

    def __call__(self, path: str | os.PathLike) -> MetaTensor:
        seq = load_sequence(path, self.spatial_dims)
        if seq.shape[0] < self.min_frames:
            raise _too_short(path, seq.shape[0], self.min_frames)
        return seq


class LoadSequenced(MapTransform):
    """Dictionary transform: each key's path -> :func:`load_sequence` ``(T, *S)`` (frames as channels), at least
    ``min_frames`` of them (:class:`LoadSequence`)."""

    def __init__(self, keys="image", spatial_dims: int = 2, min_frames: int = 2,
                 allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.loader = LoadSequence(spatial_dims, min_frames)

    def __call__(self, data):
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.loader(d[key])
        return d


class RandFrameWindowd(Randomizable, MapTransform):
    """Dictionary transform: a random window of ``frames`` consecutive frames of ``(T, *S)`` sequences (the first
    axis), so sequences of any length batch together and each pair of frames in the window is at most
    ``frames - 1`` apart. One :class:`~monai_cover.errors.BadInputError` line naming the file for shorter ones."""

    def __init__(self, keys="image", frames: int = 2, allow_missing_keys: bool = False) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        self.frames = int(frames)

    def __call__(self, data):
        d = dict(data)
        for key in self.key_iterator(d):
            x = d[key]
            t_len = x.shape[0]
            if t_len < self.frames:
                raise _too_short(getattr(x, "meta", {}).get("filename_or_obj", key), t_len, self.frames)
            start = int(self.R.randint(0, t_len - self.frames + 1))
            d[key] = x[start : start + self.frames]
        return d
