"""Small helpers shared across the package: writing files safely, and which process of a group writes them."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch.distributed as dist

from monai_cover.errors import BadInputError, MissingFileError, unwritable

__all__ = ["atomic_write", "bundle_root", "is_main_process", "read_json"]


def is_main_process() -> bool:
    """True on rank 0 of a process group, or when not distributed: the one process that writes shared files."""
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> None:
    """Write ``path`` through ``write(tmp_path)`` then rename: readers see the old file or the whole new one.

    A crash or a full disk during ``write`` leaves the previous file untouched (the temporary file is removed); a
    full disk or a folder without write permission raises :class:`OutputWriteError` (one line naming ``path``).
    The file gets the permissions of a normally created file (``0o666`` less the umask), not the temporary file's
    ``0o600``, so colleagues can read shared models.
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except (OSError, RuntimeError) as e:
        failed = unwritable(path, e)
        if failed is None:
            raise
        raise failed from e
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.remove(tmp)


def bundle_root(name: str) -> str:
    """The folder of bundle ``name`` when a config runs without ``--bundle_root``.

    ``"."`` when the current folder is a bundle (holds ``configs/metadata.json``: a copied bundle, e.g. in a MONAI
    Label app or a model-zoo checkout, run from its own folder); else ``bundles/<name>`` below the current folder
    (this repository's root, where the design-card commands run).

    Raises:
        MissingFileError: neither exists (one line saying to pass ``--bundle_root``).
    """
    if Path("configs", "metadata.json").is_file():
        return "."
    inside = Path("bundles", name)
    if inside.is_dir():
        return str(inside)
    raise MissingFileError(f"{Path.cwd()}: neither a bundle folder (no configs/metadata.json) nor a checkout with "
                           f"{inside}/ (run from the bundle's folder or the repository root, or pass --bundle_root)")


def read_json(path: str | os.PathLike):
    """A JSON file's content; a missing or malformed file is a one-line :class:`BadInputError` naming it."""
    path = Path(path)
    if not path.is_file():
        raise BadInputError(f"{path}: file not found")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BadInputError(f"{path}: not valid JSON ({e}).") from None
