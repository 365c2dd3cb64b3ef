"""Shared helpers for bundle tests: tiny synthetic datasets and the real ``monai.bundle`` entry point."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import subprocess
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
TINY_NET = ["--channels", "[4,8,8,16,16]", "--decoder_channels", "[16,8,8,8]"]


def smooth_image(shape, seed: int) -> np.ndarray:
    """Blobby test image in [0, 255] (smooth, so views are learnable and warps meaningful)."""
    rng = np.random.default_rng(seed)
    grids = np.meshgrid(*[np.linspace(0, 1, s) for s in shape], indexing="ij")
    img = np.zeros(shape)
    for _ in range(6):
        c = rng.uniform(0.1, 0.9, len(shape))
        r = rng.uniform(0.05, 0.25)
        img += np.exp(-sum((g - ci) ** 2 for g, ci in zip(grids, c)) / (2 * r**2))
    return (255 * img / img.max()).astype(np.uint8)


@pytest.fixture(scope="session")
def png_dir(tmp_path_factory) -> Path:
    from PIL import Image

    d = tmp_path_factory.mktemp("png images")  # space on purpose: paths with spaces must work
    for i in range(6):
        Image.fromarray(smooth_image((64, 64), i)).save(d / f"img_{i}.png")
    return d


@pytest.fixture(scope="session")
def nifti_dir(tmp_path_factory) -> Path:
    import nibabel as nib

    d = tmp_path_factory.mktemp("nifti")
    for i in range(4):
        nib.save(nib.Nifti1Image(smooth_image((20, 22, 18), i).astype(np.float32), np.eye(4)), d / f"vol_{i}.nii.gz")
    return d


def tensorboard_writer_pids(log_dir: Path) -> set[str]:
    """Process ids that wrote TensorBoard event files in ``log_dir`` (names end ``.<host>.<pid>.<uid>``)."""
    return {p.name.split(".")[-2] for p in log_dir.glob("events.out.tfevents.*")}


def _free_port() -> int:
    """A TCP port nobody listens on now: consecutive torchrun tests must not share one (the previous run's port can
    still be in TIME_WAIT, and the rendezvous then fails)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class BundleRun:
    """What a bundle run left: exit status and its output (as :class:`subprocess.CompletedProcess` has them)."""

    returncode: int
    stdout: str
    stderr: str
    error: BaseException | None = None


def _cli_to_call(args: tuple[str, ...]) -> tuple[str, list, dict]:
    """``("run", "--config_file", "x.json", "--epochs", "2")`` as the function of :mod:`monai.bundle` that
    ``python -m monai.bundle`` calls and its arguments (values parsed by fire, as on the command line)."""
    from fire.parser import DefaultParseValue

    verb, rest = args[0], list(args[1:])
    positional, kwargs = [], {}
    while rest and not rest[0].startswith("--"):
        positional.append(DefaultParseValue(rest.pop(0)))
    while rest:
        key = rest.pop(0)
        assert key.startswith("--"), f"expected --option, got {key!r} in {args}"
        value = rest.pop(0) if rest and not rest[0].startswith("--") else "True"
        kwargs[key[2:]] = DefaultParseValue(value)
    return verb, positional, kwargs


class _Output(io.StringIO):
    """Captured output that outlives the run: MONAI's logging setup closes existing handlers, and some close their
    stream."""

    def close(self) -> None:
        pass


def _run_in_process(args: tuple[str, ...], cwd: Path) -> BundleRun:
    """Run a bundle in this interpreter through :func:`monai.bundle.run` (what ``python -m monai.bundle run`` calls),
    output captured; the logging setup the bundle applies is undone afterwards."""
    import monai.bundle

    verb, positional, kwargs = _cli_to_call(args)
    out, err = _Output(), _Output()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    # loggers that hold a stream of their own (MONAI's get_logger binds sys.stdout when a module is imported) write
    # into the captured output too, as they would into the process's output
    loggers = [root, *(lg for lg in logging.Logger.manager.loggerDict.values() if isinstance(lg, logging.Logger))]
    streams = {h: h.stream for lg in loggers for h in lg.handlers
               if type(h) is logging.StreamHandler}
    for h, stream in streams.items():
        h.setStream(err if getattr(stream, "name", "") == "<stderr>" else out)
    error = None
    try:
        with contextlib.chdir(cwd), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            getattr(monai.bundle, verb)(*positional, **kwargs)
    except Exception as e:  # noqa: BLE001 - reported as the exit status and message a process would give
        error = e
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        for h, stream in streams.items():
            h.setStream(stream)
    if error is not None:
        from monai_cover.errors import one_line_report

        line = one_line_report(error)
        err.write(f"{line}\n" if line else "".join(traceback.format_exception(error)))
    return BundleRun(0 if error is None else 1, out.getvalue(), err.getvalue(), error)


def _run_process(args: tuple[str, ...], torchrun: int, timeout: int, cwd: Path) -> BundleRun:
    if torchrun:
        cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={torchrun}", "--master_port",
               str(_free_port()), "-m", "monai.bundle", *args]
    else:
        cmd = [sys.executable, "-m", "monai.bundle", *args]
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    env.pop("MONAI_COVER_FULL_TRACEBACK", None)
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    return BundleRun(proc.returncode, proc.stdout, proc.stderr)


def run_bundle(*args: str, torchrun: int = 0, process: bool = False, timeout: int = 600,
               cwd: Path = REPO) -> BundleRun:
    """Run ``python -m monai.bundle <args>`` from ``cwd`` (the repo root) and fail the test with its output unless it
    succeeds. In this interpreter, as the model zoo's unit tests run bundles, unless a process boundary is the point:
    ``torchrun`` (DDP with that many processes) or ``process=True`` (signals, the interpreter's error hook)."""
    run = _run_process(args, torchrun, timeout, cwd) if torchrun or process else _run_in_process(args, cwd)
    if run.returncode != 0:
        pytest.fail(f"monai.bundle {' '.join(args)} failed ({run.returncode}):\n{run.stdout[-4000:]}\n"
                    f"{run.stderr[-6000:]}")
    return run


def library_warnings(proc: BundleRun) -> list[str]:
    """Python warnings (``...Warning:``) and other libraries' logged warnings of a bundle run, except MONAI's notice
    on parsing any config file (printed before a bundle's own code runs; our own logged warnings are messages)."""
    return [line for line in (proc.stdout + proc.stderr).splitlines()
            if ("Warning:" in line or (" - WARNING - " in line and " - monai_cover." not in line))
            and "parsing config_file" not in line]


def bundle_error(*args: str, cwd: Path = REPO, process: bool = False) -> str:
    """Run ``python -m monai.bundle <args>`` (in this interpreter unless ``process``), expected to stop with exit 1
    and a one-line report (no traceback, no MONAI ``ConfigExpression`` chain, no error records of the engines before
    it); return that line (the last of stderr)."""
    run = _run_process(args, 0, 600, cwd) if process else _run_in_process(args, cwd)
    assert run.returncode == 1, run.stderr[-3000:]
    output = run.stdout + run.stderr  # the engines' own error records would come before the line, on stdout
    for noise in ("Traceback", "ConfigExpression", " - ERROR - "):
        assert noise not in output, output[-3000:]
    return run.stderr.strip().splitlines()[-1]


def blob_case(shape, seed: int, num_classes: int = 2):
    """Image with ``num_classes`` bright blobs and its label map (0 background, k = blob k)."""
    rng = np.random.default_rng(seed)
    grids = np.meshgrid(*[np.arange(s) for s in shape], indexing="ij")
    label = np.zeros(shape, np.uint8)
    for k in range(1, num_classes + 1):
        c = [rng.uniform(0.25, 0.75) * s for s in shape]
        r = rng.uniform(0.12, 0.2) * min(shape)
        label[sum((g - ci) ** 2 for g, ci in zip(grids, c)) < r**2] = k
    image = 40 + 60 * label + rng.normal(0, 8, shape)
    return np.clip(image, 0, 255).astype(np.uint8), label


@pytest.fixture(scope="session")
def seg2d_dir(tmp_path_factory) -> Path:
    """``images/``, ``labels/`` of 8 PNG cases 48x40 (non-square: catches transposed geometry)."""
    from PIL import Image

    root = tmp_path_factory.mktemp("seg 2d")
    (root / "images").mkdir()
    (root / "labels").mkdir()
    for i in range(8):
        img, lab = blob_case((48, 40), i)
        Image.fromarray(img).save(root / "images" / f"case_{i}.png")
        Image.fromarray(lab).save(root / "labels" / f"case_{i}.png")
    return root


@pytest.fixture(scope="session")
def seg3d_dir(tmp_path_factory) -> Path:
    """``images/``, ``labels/`` of 5 NIfTI cases 20x18x16 with a non-identity affine (spacing 1.5, 1, 2 mm)."""
    import nibabel as nib

    root = tmp_path_factory.mktemp("seg3d")
    (root / "images").mkdir()
    (root / "labels").mkdir()
    affine = np.diag([1.5, 1.0, 2.0, 1.0])
    affine[:3, 3] = [10, -5, 3]
    for i in range(5):
        img, lab = blob_case((20, 18, 16), i)
        nib.save(nib.Nifti1Image(img.astype(np.float32), affine), root / "images" / f"case_{i}.nii.gz")
        nib.save(nib.Nifti1Image(lab.astype(np.uint8), affine), root / "labels" / f"case_{i}.nii.gz")
    return root
