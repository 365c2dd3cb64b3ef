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


def run_bundle(*args: str, torchrun: int = 0, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run ``python -m monai.bundle <args>`` (or under ``torchrun``) from the repo root; fail with its output."""
    if torchrun:
        cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={torchrun}", "--master_port",
               str(29500 + os.getpid() % 1000), "-m", "monai.bundle", *args]
    else:
        cmd = [sys.executable, "-m", "monai.bundle", *args]
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}")
    return proc
