"""A tiny labeled 2D task (synthetic blobs, layout ``datalist``) and a tiny COVER backbone for it."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

from monai_cover.networks import CoverUNet
from monai_cover.weights import save_backbone
from tests.bundles.conftest import blob_case

TINY = {"channels": [4, 8, 8, 16, 16], "decoder_channels": [16, 8, 8, 8]}


@pytest.fixture
def task_and_backbone(tmp_path):
    cases = []
    for i in range(10):
        img, lab = blob_case((32, 32), i, num_classes=1)
        Image.fromarray(img).save(tmp_path / f"case_{i}.png")
        Image.fromarray(lab).save(tmp_path / f"case_{i}_label.png")
        cases.append({"image": f"case_{i}.png", "label": f"case_{i}_label.png"})
    (tmp_path / "data.json").write_text(json.dumps({"train": cases[:8], "test": cases[8:], "label_names": ["blob"]}))
    task = {"name": "blobs", "title": "synthetic blobs", "layout": "datalist", "data": str(tmp_path / "data.json"),
            "spatial_dims": 2, "multilabel": False, "num_val": 2, "methods": ["cover", "scratch"], "fractions": [1.0],
            "common": TINY, "pretrain": {}, "seg": {"image_size": [32, 32], "roi_size": [32, 32], "batch_size": 2},
            "modes": {"tiny": {"seeds": [0], "pretrain_iterations": 1, "finetune_steps": 2, "val_checks": 1}}}
    (tmp_path / "task.json").write_text(json.dumps(task))
    torch.manual_seed(0)
    arch = {"spatial_dims": 2, "in_channels": 1, **TINY}
    backbone = save_backbone(tmp_path / "backbone", CoverUNet(**arch), {**arch, "image_size": [32, 32]})["safetensors"]
    return tmp_path / "task.json", backbone
