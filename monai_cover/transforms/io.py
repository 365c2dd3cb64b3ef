"""MONAI image loading whose failures are one line naming the file: :class:`SafeLoadImage` / :class:`SafeLoadImaged`.

An unreadable, corrupt or truncated file, or a DICOM folder with no or several series, raises
:class:`~monai_cover.errors.BadInputError` ``"<path>: <problem>"`` instead of MONAI's multi-reader traceback.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from monai.data import MetaTensor
from monai.transforms import LoadImage, LoadImaged, Orientationd

from monai_cover.errors import BadInputError, first_line

__all__ = ["SafeLoadImage", "SafeLoadImaged", "display_path", "source_name", "to_ras"]


def display_path(source: Any) -> str:
    if isinstance(source, (list, tuple)):
        return ", ".join(display_path(s) for s in source)
    return os.fspath(source) if isinstance(source, (str, os.PathLike)) else str(source)


def source_name(img: Any, default: str = "<array>") -> str:
    """The file an image came from (MetaTensor ``filename_or_obj``), else ``default``."""
    if isinstance(img, MetaTensor):
        name = img.meta.get("filename_or_obj")
        if name is not None and str(name):
            return display_path(name)
    return default


def _safe_load(loader: LoadImage, filename: Any, reader=None):
    name = display_path(filename)
    for one in filename if isinstance(filename, (list, tuple)) else [filename]:
        if isinstance(one, (str, os.PathLike)):
            path = Path(one).expanduser()
            if not path.exists():
                raise BadInputError(f"{display_path(one)}: file not found.")
            if path.is_dir():
                # data imports transforms, so transforms reach data only at call time (one import direction)
                from monai_cover.data.dicom import check_dicom_folder

                check_dicom_folder(path)
    try:
        return loader(filename, reader)
    except BadInputError:
        raise
    except Exception as e:
        raise BadInputError(f"{name}: cannot read image ({first_line(e)}).") from None


@contextmanager
def _quiet_reader_registration() -> Iterator[None]:
    """MONAI's ``LoadImage`` builds every default reader, the nvImageCodec DICOM reader included, which reports
    twice (a log warning and a ``UserWarning``) on every machine without nvImageCodec and CUDA, once per transform
    built. DICOM decodes with pydicom either way and nothing can be done about it, so exactly those two messages
    are dropped, only while our loaders build their readers."""
    plugin_log = logging.getLogger("monai.data.nvimgcodec_pydicom_plugin")
    drop = lambda record: "nvImageCodec is not available" not in record.getMessage()  # noqa: E731
    plugin_log.addFilter(drop)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="NvImgCodecPydicomReader: nvImageCodec decoder plugin")
            yield
    finally:
        plugin_log.removeFilter(drop)


def to_ras(keys: str | Sequence[str]) -> Orientationd:
    """``Orientationd`` to RAS with MONAI's axis labels given explicitly (what every MONAI release so far uses: left
    to right, posterior to anterior, inferior to superior), so MONAI's notice that this default will change is not
    printed on every run; the one place the bundles' orientation is defined."""
    return Orientationd(keys, axcodes="RAS", labels=(("L", "R"), ("P", "A"), ("I", "S")))


class SafeLoadImage(LoadImage):
    """:class:`monai.transforms.LoadImage` raising one-line :class:`BadInputError` ``"<path>: <problem>"``."""

    def __init__(self, *args, **kwargs) -> None:
        with _quiet_reader_registration():
            super().__init__(*args, **kwargs)

    def __call__(self, filename, reader=None):
        return _safe_load(super().__call__, filename, reader)


class SafeLoadImaged(LoadImaged):
    """:class:`monai.transforms.LoadImaged` raising one-line :class:`BadInputError` ``"<path>: <problem>"``.

    Same arguments and outputs as ``LoadImaged``; a missing, corrupt or truncated file, or a DICOM folder with no
    or several series, gives ``BadInputError`` (a ``ValueError``) instead of MONAI's multi-reader traceback.
    """

    def __init__(self, *args, **kwargs) -> None:
        with _quiet_reader_registration():
            super().__init__(*args, **kwargs)

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
