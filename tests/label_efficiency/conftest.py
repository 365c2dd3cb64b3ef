"""A tiny labeled 2D task (synthetic blobs, layout ``datalist``) and a tiny COVER backbone for it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from monai_cover.networks import CoverUNet
from monai_cover.weights import save_backbone
from tests.bundles.conftest import blob_case

TINY = {"channels": [4, 8, 8, 16, 16], "decoder_channels": [16, 8, 8, 8]}


def write_blob_datalist(root: Path, n_train: int, n_test: int) -> Path:
    """``root/data.json`` (layout ``datalist``) of ``n_train`` + ``n_test`` synthetic blob cases, 32x32 PNG."""
    cases = []
    for i in range(n_train + n_test):
        img, lab = blob_case((32, 32), i, num_classes=1)
        Image.fromarray(img).save(root / f"case_{i}.png")
        Image.fromarray(lab).save(root / f"case_{i}_label.png")
        cases.append({"image": f"case_{i}.png", "label": f"case_{i}_label.png"})
    spec = {"train": cases[:n_train], "test": cases[n_train:], "label_names": ["blob"]}
    (root / "data.json").write_text(json.dumps(spec))
    return root / "data.json"


@pytest.fixture
def task_and_backbone(tmp_path):
    data = write_blob_datalist(tmp_path, n_train=8, n_test=2)
    task = {"name": "blobs", "title": "synthetic blobs", "layout": "datalist", "data": str(data),
            "spatial_dims": 2, "multilabel": False, "num_val": 2, "methods": ["cover", "scratch"], "fractions": [1.0],
            "common": TINY, "pretrain": {}, "seg": {"image_size": [32, 32], "roi_size": [32, 32], "batch_size": 2},
            "modes": {"tiny": {"seeds": [0], "pretrain_iterations": 1, "finetune_steps": 2, "val_checks": 1}}}
    (tmp_path / "task.json").write_text(json.dumps(task))
    torch.manual_seed(0)
    arch = {"spatial_dims": 2, "in_channels": 1, **TINY}
    backbone = save_backbone(tmp_path / "backbone", CoverUNet(**arch), {**arch, "image_size": [32, 32]})["safetensors"]
    return tmp_path / "task.json", backbone
