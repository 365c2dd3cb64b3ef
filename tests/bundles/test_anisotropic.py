"""Thick-slice volumes (12 slices of 8 mm) through both bundles with per-axis sizes: the slice axis is padded to one
network stride (16) at most, views rotate in-plane only, and the fine-tuned model predicts in the input geometry."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tests.bundles.conftest import REPO, TINY_NET, blob_case, library_warnings, run_bundle

PRETRAIN = str(REPO / "bundles" / "cover_pretrain" / "configs" / "train.json")
SEG = REPO / "bundles" / "cover_seg" / "configs"


@pytest.fixture(scope="module")
def stacks(tmp_path_factory):
    import nibabel as nib

    root = tmp_path_factory.mktemp("stacks")
    affine = np.diag([1.0, 1.0, 8.0, 1.0])
    for sub in ("images", "labels"):
        (root / sub).mkdir()
    for i in range(5):
        img, lab = blob_case((48, 40, 12), i)
        nib.save(nib.Nifti1Image(img.astype(np.float32), affine), root / "images" / f"stack_{i}.nii.gz")
        nib.save(nib.Nifti1Image(lab.astype(np.uint8), affine), root / "labels" / f"stack_{i}.nii.gz")
    return root


def test_pretrain_then_finetune_thick_slices_with_per_axis_sizes(tmp_path, stacks):
    import nibabel as nib

    pre = tmp_path / "pretrain"
    run_bundle("run", "--config_file", PRETRAIN, "--bundle_root", str(pre), "--dataset_dir", str(stacks / "images"),
               "--spatial_dims", "3", *TINY_NET, "--crop_size", "[32,32,16]", "--load_size", "[40,40,16]",
               "--train#sampler#geometry#rotate_deg", "[15,0,0]",
               "--train#sampler#geometry#translate_frac", "[0.1,0.1,0]",
               "--epochs", "1", "--batch_size", "2", "--num_val", "1", "--val_interval", "2")
    record = json.loads((pre / "outputs" / "3d" / "run.json").read_text())
    views = record["settings"]
    assert json.loads(views["load_size"]) == [40, 40, 16]  # 12 slices padded to 16, not to 1.5 x 16
    # the command line's in-plane ranges reached the sampler (recorded from its config)
    assert json.loads(record["details"]["views.geometry.rotate_deg"]) == [15, 0, 0]
    assert json.loads(record["details"]["views.geometry.translate_frac"]) == [0.1, 0.1, 0]
    hist = json.loads((pre / "outputs" / "3d" / "val_history.json").read_text())
    assert hist[-1]["val_epe_zero"] > 0

    seg = tmp_path / "seg"
    run_bundle("run", "--config_file", str(SEG / "train.json"), "--bundle_root", str(seg), "--images_dir",
               str(stacks / "images"), "--labels_dir", str(stacks / "labels"), "--label_names", "['a','b']",
               "--roi_size", "[32,32,16]", "--pretrained", str(pre / "models" / "model.safetensors"),
               "--epochs", "1", "--val_interval", "1", "--batch_size", "2")
    assert torch.load(seg / "models" / "model.pt", weights_only=True)["head.weight"].ndim == 5
    run_bundle("run", "--config_file", str(SEG / "inference.json"), "--bundle_root", str(seg), "--dataset_dir",
               str(stacks / "images"))
    src = nib.load(stacks / "images" / "stack_0.nii.gz")
    out = nib.load(seg / "predictions" / "stack_0_seg.nii.gz")
    assert out.shape[:3] == src.shape == (48, 40, 12) and np.allclose(out.affine, src.affine, atol=1e-4)


def test_auto_sizes_fit_the_stacks_and_hold_the_slab_axis_still(tmp_path, stacks):
    import nibabel as nib

    pre = tmp_path / "pretrain"
    log = run_bundle("run", "--config_file", PRETRAIN, "--bundle_root", str(pre), "--dataset_dir",
                     str(stacks / "images"), "--spatial_dims", "3", *TINY_NET, "--crop_size", "auto", "--epochs", "1",
                     "--batch_size", "2", "--num_val", "1", "--val_interval", "2")
    assert library_warnings(log) == []
    log = log.stdout + log.stderr
    run = json.loads((pre / "outputs" / "3d" / "run.json").read_text())["settings"]
    # median grid 48x40x12: crop rounded down to the stride 16 (the 12 slices: one stride), grid no larger than
    # the data except the slab axis padded to one stride, and no view motion out of the slices' plane
    assert "--crop_size auto: [48, 32, 16] from the median grid [48, 40, 12]" in log
    assert json.loads(run["load_size"]) == [48, 40, 16]
    assert "views: axis 2 of the crop [48, 32, 16] is a slab" in log

    seg = tmp_path / "seg"
    log = run_bundle("run", "--config_file", str(SEG / "train.json"), "--bundle_root", str(seg), "--images_dir",
                     str(stacks / "images"), "--labels_dir", str(stacks / "labels"), "--label_names", "['a','b']",
                     "--roi_size", "auto", "--pretrained", str(pre / "models" / "model.safetensors"),
                     "--epochs", "1", "--val_interval", "1", "--batch_size", "2")
    settings = json.loads((seg / "models" / "model.json").read_text())["settings"]
    assert settings["roi_size"] == [48, 48, 16]  # the whole median stack in one window, < one stride of padding
    assert library_warnings(log) == []  # quiet: no deprecation or reader notices from our configs and loaders
    log = run_bundle("run", "--config_file", str(SEG / "inference.json"), "--bundle_root", str(seg), "--dataset_dir",
                     str(stacks / "images"))
    assert library_warnings(log) == []
    out = nib.load(seg / "predictions" / "stack_1_seg.nii.gz")
    assert out.shape[:3] == (48, 40, 12)


def test_slicewise_pretraining_gives_the_2d_backbone_slicewise_fine_tuning_loads(tmp_path, stacks):
    """cover_pretrain --slicewise True: a 2D backbone pretrained on the axial slices of the stacks (native in-plane
    grid, auto crop from the in-plane median 48x40), which cover_seg --slicewise True fine-tunes."""
    pre = tmp_path / "pretrain"
    log = run_bundle("run", "--config_file", PRETRAIN, "--bundle_root", str(pre), "--dataset_dir",
                     str(stacks / "images"), "--spatial_dims", "3", "--slicewise", "True", *TINY_NET, "--crop_size",
                     "auto", "--epochs", "1", "--batch_size", "2", "--num_val", "1", "--val_interval", "2")
    log = log.stdout + log.stderr
    assert "--crop_size auto: [48, 32] from the median grid [48, 40]" in log
    run = json.loads((pre / "outputs" / "2d" / "run.json").read_text())["settings"]
    assert json.loads(run["load_size"]) == [48, 40]
    config = json.loads((pre / "models" / "model.json").read_text())
    assert config["spatial_dims"] == 2

    seg = tmp_path / "seg"
    log = run_bundle("run", "--config_file", str(SEG / "train.json"), "--bundle_root", str(seg), "--images_dir",
                     str(stacks / "images"), "--labels_dir", str(stacks / "labels"), "--label_names", "['a','b']",
                     "--slicewise", "True", "--roi_size", "[32,32]", "--pretrained",
                     str(pre / "models" / "model.safetensors"), "--epochs", "1", "--val_interval", "1",
                     "--batch_size", "2")
    assert "loaded" in log.stdout + log.stderr
    assert torch.load(seg / "models" / "model.pt", weights_only=True)["head.weight"].ndim == 4
