"""A bundle folder copied elsewhere (a MONAI Label app, a model-zoo checkout) runs from its own folder; from the repo
root the design-card commands keep working without ``--bundle_root`` (covered by the README and demo tests)."""

from __future__ import annotations

import json
import shutil

from tests.bundles.conftest import REPO, TINY_NET, bundle_error, run_bundle

_RUN_OUTPUTS = shutil.ignore_patterns("outputs", "models", "predictions", "features", "__pycache__")


def _copy(name: str, dest):
    return shutil.copytree(REPO / "bundles" / name, dest / "app" / name, ignore=_RUN_OUTPUTS)


def test_copied_pretrain_bundle_runs_from_its_folder(tmp_path, png_dir):
    bundle = _copy("cover_pretrain", tmp_path)
    run_bundle("run", "--config_file", "configs/train.json", "--dataset_dir", str(png_dir), *TINY_NET,
               "--epochs", "1", "--crop_size", "32", "--batch_size", "2", "--num_val", "1", "--val_interval", "2",
               "--checkpoint_interval", "2", cwd=bundle)
    assert json.loads((bundle / "outputs" / "2d" / "val_history.json").read_text())[-1]["iteration"] == 2
    assert (bundle / "models" / "model.safetensors").is_file()


def test_copied_seg_bundle_trains_and_infers_from_its_folder(tmp_path, seg2d_dir):
    bundle = _copy("cover_seg", tmp_path)
    args = ["--label_names", "['a','b']", "--image_size", "[48,40]", "--roi_size", "[48,40]", *TINY_NET]
    run_bundle("run", "--config_file", "configs/train.json", "--images_dir", str(seg2d_dir / "images"),
               "--labels_dir", str(seg2d_dir / "labels"), *args, "--epochs", "1", "--val_interval", "1",
               "--batch_size", "2", cwd=bundle)
    assert (bundle / "models" / "model.pt").is_file()
    run_bundle("run", "--config_file", "configs/inference.json", "--dataset_dir", str(seg2d_dir / "images"), *args,
               cwd=bundle)
    assert len(list((bundle / "predictions").glob("*_seg.nii.gz"))) == 8


def test_bundle_root_not_found_is_one_line(tmp_path):
    bundle = _copy("cover_pretrain", tmp_path)
    line = bundle_error("run", "--config_file", str(bundle / "configs" / "train.json"), cwd=tmp_path)
    assert line.startswith(f"MissingFileError: {tmp_path}: neither a bundle folder") and "--bundle_root" in line
