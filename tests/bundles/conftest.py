"""Shared helpers for bundle tests: tiny synthetic datasets and the real ``monai.bundle`` entry point."""

from __future__ import annotations

import os
import subprocess
import sys
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


def run_bundle(*args: str, torchrun: int = 0, timeout: int = 600, cwd: Path = REPO) -> subprocess.CompletedProcess:
    """Run ``python -m monai.bundle <args>`` (or under ``torchrun``) from ``cwd`` (the repo root); fail with its
    output."""
    if torchrun:
        cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={torchrun}", "--master_port",
               str(_free_port()), "-m", "monai.bundle", *args]
    else:
        cmd = [sys.executable, "-m", "monai.bundle", *args]
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}")
    return proc


def library_warnings(proc: subprocess.CompletedProcess) -> list[str]:
    """Python warnings (``...Warning:``) and other libraries' logged warnings of a bundle run, except MONAI's notice
    on parsing any config file (printed before a bundle's own code runs; our own logged warnings are messages)."""
    return [line for line in (proc.stdout + proc.stderr).splitlines()
            if ("Warning:" in line or (" - WARNING - " in line and " - monai_cover." not in line))
            and "parsing config_file" not in line]


def bundle_error(*args: str, cwd: Path = REPO) -> str:
    """Run ``python -m monai.bundle <args>``, expected to stop with exit 1 and a one-line report (no traceback, no
    MONAI ``ConfigExpression`` chain); return that line (the last of stderr)."""
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    env.pop("MONAI_COVER_FULL_TRACEBACK", None)
    proc = subprocess.run([sys.executable, "-m", "monai.bundle", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and "ConfigExpression" not in proc.stderr, proc.stderr[-3000:]
    return proc.stderr.strip().splitlines()[-1]


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
