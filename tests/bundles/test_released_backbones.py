"""The released backbones (``released/<name>/``): each loads by its name, fits the size a repository can carry, and
its model card states its data, licence, budget, held-out endpoint error and measured effect; cover_seg fine-tunes
from one by name."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from monai_cover.hub import RELEASED_DIR, from_pretrained, released_names, resolve_field_model
from monai_cover.weights import load_field_model
from tests.bundles.conftest import run_bundle

NAMES = released_names()


def test_the_demo_backbone_is_released():
    assert "cover-cxr-demo-2d" in NAMES


@pytest.mark.parametrize("name", NAMES)
def test_a_released_backbone_loads_by_name_and_its_card_says_what_it_is_worth(name):
    folder = RELEASED_DIR / name
    assert sum(f.stat().st_size for f in folder.iterdir()) < 20 * 2**20
    net = from_pretrained(name)
    stored = load_file(folder / "model.safetensors")
    assert all(torch.equal(net.state_dict()[k].float(), v.float()) for k, v in stored.items())
    field = load_field_model(resolve_field_model(name))
    assert all(torch.equal(field.backbone.state_dict()[k].float(), v.float()) for k, v in stored.items())
    card = (folder / "README.md").read_text()
    assert card.startswith("---\nlicense: ") and "| pretraining data | " in card
    assert "| pretraining iterations | " in card and "(predicting no motion: " in card
    assert "## Fine-tuning from it against scratch" in card and "Paired difference over " in card
    assert json.loads((folder / "model.json").read_text())["pretrain_iterations"] > 0


def test_cover_seg_fine_tunes_from_a_released_name(tmp_path, seg2d_dir):
    run_bundle("run", "--config_file", "bundles/cover_seg/configs/train.json", "--bundle_root", str(tmp_path / "ft"),
               "--images_dir", str(seg2d_dir / "images"), "--labels_dir", str(seg2d_dir / "labels"),
               "--label_names", "['a','b']", "--image_size", "[48,48]", "--roi_size", "[48,48]", "--epochs", "1",
               "--val_interval", "1", "--pretrained", "cover-cxr-demo-2d")
    settings = json.loads((tmp_path / "ft" / "models" / "model.json").read_text())["settings"]
    assert settings["channels"] == json.loads((RELEASED_DIR / "cover-cxr-demo-2d" / "model.json").read_text())[
        "channels"]
