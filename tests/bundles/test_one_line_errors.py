"""Common mistakes through ``python -m monai.bundle run`` end in one line naming the file and the remedy, exit 1.

Before, each of these printed 56-427 lines of nested ``ConfigExpression`` traceback."""

from __future__ import annotations

import errno
import json
import os

import pytest
import torch

from monai_cover.networks import CoverSegNet, CoverUNet
from monai_cover.weights import save_backbone
from tests.bundles.conftest import REPO, TINY_NET, bundle_error, run_bundle

CONFIGS = REPO / "bundles"
PRE_TRAIN = str(CONFIGS / "cover_pretrain" / "configs" / "train.json")
SEG = CONFIGS / "cover_seg" / "configs"
SEG_ARGS = ["--label_names", "['a','b']", "--image_size", "[48,40]", "--roi_size", "[48,40]", *TINY_NET, "--epochs",
            "1", "--batch_size", "2"]


def _seg_train(root, data, *extra):
    return ("--config_file", str(SEG / "train.json"), "--bundle_root", str(root), "--images_dir",
            str(data / "images"), "--labels_dir", str(data / "labels"), *SEG_ARGS, *extra)


def test_missing_and_empty_data_folders(tmp_path):
    missing = tmp_path / "no such folder"
    last = bundle_error("run", "--config_file", PRE_TRAIN, "--bundle_root", str(tmp_path), "--dataset_dir",
                        str(missing))
    assert last.startswith(f"MissingFileError: {missing}: image source does not exist")
    empty = tmp_path / "empty"
    empty.mkdir()
    last = bundle_error("run", "--config_file", PRE_TRAIN, "--bundle_root", str(tmp_path), "--dataset_dir", str(empty))
    assert last.startswith(f"BadInputError: {empty}: no images found")


def test_datalist_without_training_section(tmp_path):
    datalist = tmp_path / "list.json"
    datalist.write_text(json.dumps({"validation": [{"image": "a.png", "label": "b.png"}]}))
    last = bundle_error("run", "--config_file", str(SEG / "train.json"), "--bundle_root", str(tmp_path), "--data_file",
                        str(datalist), *SEG_ARGS)
    assert last.startswith(f"BadInputError: {datalist}: no 'training' list of items in the datalist (expected e.g.")


def _pickled(path):
    class Payload:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"state_dict": {"w": torch.ones(1)}, "payload": Payload()}, path)


@pytest.mark.parametrize("case", ["missing", "truncated", "pickled", "other widths", "2D for 3D"])
def test_pretrained_weights_failures(tmp_path, seg2d_dir, case):
    path = tmp_path / "backbone.pt"
    if case == "truncated":
        save_backbone(tmp_path, CoverUNet(2, 1, [4, 8, 8, 16, 16], [16, 8, 8, 8]), {"spatial_dims": 2})
        path = tmp_path / "model.pt"
        path.write_bytes(path.read_bytes()[:200])
    elif case == "pickled":
        _pickled(path)
    elif case == "other widths":
        save_backbone(tmp_path, CoverUNet(2, 1, [8, 8, 16, 16, 32], [16, 8, 8, 8]), {"spatial_dims": 2})
        path = tmp_path / "model.pt"
    extra = []
    if case == "2D for 3D":  # a 2D backbone told to fine-tune in 3D: no width or non-strict setting fixes that
        save_backbone(tmp_path, CoverUNet(2, 1, [4, 8, 8, 16, 16], [16, 8, 8, 8]), {"spatial_dims": 2})
        path, extra = tmp_path / "model.pt", ["--spatial_dims", "3", "--pretrained_strict", "False"]
    last = bundle_error("run", *_seg_train(tmp_path, seg2d_dir, "--pretrained", str(path), *extra))
    expected = {
        "missing": f"MissingFileError: {path}: pretrained weights file not found (check the path given as --",
        "truncated": f"WeightsError: {path}: not a readable weights file (",
        "pickled": f"WeightsError: {path}: not a readable weights file (it holds pickled Python objects, which are "
                   "never loaded",
        "other widths": f"WeightsError: {path}: weights do not match the network: loaded ",
        "2D for 3D": f"WeightsError: {path}: a 2D backbone cannot initialise a 3D network (",
    }[case]
    assert last.startswith(expected)
    assert "weights_only" not in last  # PyTorch's advice to unpickle is wrong for an untrusted file


def test_inference_without_a_model_or_with_another_model(tmp_path, seg2d_dir):
    model = tmp_path / "models" / "model.pt"
    infer = ("--config_file", str(SEG / "inference.json"), "--bundle_root", str(tmp_path), "--dataset_dir",
             str(seg2d_dir / "images"), *SEG_ARGS[:-4])
    last = bundle_error("run", *infer)  # a new user's first inference, before training
    assert last.startswith(f"MissingFileError: {model}: no trained model (train one with configs/train.json first")
    model.parent.mkdir()
    torch.save(CoverSegNet(2, 1, 2, [4, 8, 8, 16, 16], [16, 8, 8, 8]).state_dict(), model)  # 1 label, not 2
    last = bundle_error("run", *infer)
    assert last.startswith(f"WeightsError: {model}: the model does not fit these inference settings (")
    assert "head.weight: (2, " in last and "set --label_names" in last
    evaluate = ("--config_file", f"['{SEG / 'train.json'}','{SEG / 'evaluate.json'}']", "--bundle_root",
                str(tmp_path), "--images_dir", str(seg2d_dir / "images"), "--labels_dir", str(seg2d_dir / "labels"),
                *SEG_ARGS[:-4])
    assert bundle_error("run", *evaluate).startswith(f"WeightsError: {model}: the model does not fit")
    assert not (tmp_path / "predictions").exists() or not any((tmp_path / "predictions").iterdir())


def _unwritable_folder() -> str | None:
    """A folder even root cannot create (``/sys`` is read-only here); None where that does not hold."""
    target = "/sys/monai_cover_out"
    try:
        os.makedirs(target)
    except OSError as e:
        return target if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS) else None
    os.rmdir(target)
    return None


def test_unwritable_output_folder(tmp_path, seg2d_dir):
    target = _unwritable_folder()
    if target is None:
        pytest.skip("no unwritable folder on this machine (tests run as root)")
    model = tmp_path / "models" / "model.pt"
    model.parent.mkdir()
    torch.save(CoverSegNet(2, 1, 3, [4, 8, 8, 16, 16], [16, 8, 8, 8]).state_dict(), model)
    last = bundle_error("run", "--config_file", str(SEG / "inference.json"), "--bundle_root", str(tmp_path),
                        "--dataset_dir", str(seg2d_dir / "images"), "--output_dir", target, *SEG_ARGS[:-4])
    assert last.startswith(f"OutputWriteError: {target}: cannot write, ")
    assert "(check the folder's permissions, or choose another output folder)" in last


def test_lowercase_boolean_flags_stop_instead_of_counting_as_true(tmp_path, seg2d_dir):
    last = bundle_error("run", *_seg_train(tmp_path, seg2d_dir, "--multilabel", "false"))
    assert last.startswith("BadSettingError: --multilabel 'false': not True or False (write True or False with a")
    last = bundle_error("run", *_seg_train(tmp_path, seg2d_dir, "--freeze_backbone", "no"))
    assert last.startswith("BadSettingError: --freeze_backbone 'no': not True or False")
    assert not (tmp_path / "models").exists()


def test_unknown_option_values_name_the_choices(tmp_path, png_dir):
    pretrain = ("--config_file", str(CONFIGS / "cover_pretrain" / "configs" / "train.json"), "--bundle_root",
                str(tmp_path), "--dataset_dir", str(png_dir), *TINY_NET)
    assert bundle_error("run", *pretrain, "--method", "mae") == (
        "BadSettingError: --method 'mae': not one of cover, consistency, pixel_contrast "
        "(set MONAI_COVER_FULL_TRACEBACK=1 for the traceback)")
    last = bundle_error("run", *pretrain, "--rotation_sampling", "gaussian")
    assert last.startswith("BadSettingError: --rotation_sampling 'gaussian': not one of uniform, reference")
    # slice-wise pretraining needs volumes; sizes from the data need volumes too
    last = bundle_error("run", *pretrain, "--slicewise", "True")
    assert last.startswith("BadSettingError: --slicewise True: runs a 2D network on the slices of volumes, but "
                           "--spatial_dims is 2")
    last = bundle_error("run", *pretrain, "--crop_size", "auto")
    assert last.startswith("BadSettingError: --crop_size auto: sizes from the data are for volumes")
    assert not (tmp_path / "outputs").exists()


def test_patch_sizes_the_backbone_cannot_take_are_raised_or_one_line(tmp_path, seg2d_dir):
    """A 5-level backbone needs 16 voxels per axis (a thick-slice stack of 8 would fail deep inside max pooling):
    a smaller axis is raised to 16 with a log line pointing thick-slice stacks to --slicewise; a wrong number of
    values is one line."""
    proc = run_bundle("run", *_seg_train(tmp_path / "raised", seg2d_dir, "--roi_size", "[48,8]", "--val_interval", "1"))
    log = proc.stdout + proc.stderr
    assert "--roi_size [48, 8] raised to [48, 16]: the 5-level backbone halves each axis 4 times" in log
    assert "--slicewise True" in log
    assert json.loads((tmp_path / "raised" / "models" / "model.json").read_text())["settings"]["roi_size"] == [48, 16]
    last = bundle_error("run", *_seg_train(tmp_path, seg2d_dir, "--roi_size", "[48,40,16]"))
    assert last.startswith("BadSettingError: --roi_size [48, 40, 16]: 2 values expected")
    last = bundle_error("run", *_seg_train(tmp_path, seg2d_dir, "--slicewise", "True", "--spatial_dims", "2"))
    assert last.startswith("BadSettingError: --slicewise True: runs a 2D network on the slices of volumes, but "
                           "--spatial_dims is 2")
    configs = str([str(SEG / f) for f in ("train.json", "evaluate.json", "label_transfer.json")])
    last = bundle_error("run", *_seg_train(tmp_path, seg2d_dir, "--slicewise", "True", "--spatial_dims", "3",
                                           "--roi_size", "[48,40]")[2:], "--config_file", configs)
    assert last.startswith("BadSettingError: --slicewise True: label transfer does not run slice by slice yet")


def test_pretrain_feature_inference_names_a_truncated_image(tmp_path):
    config = {"spatial_dims": 2, "in_channels": 1, "channels": [4, 8, 8, 16, 16], "decoder_channels": [16, 8, 8, 8]}
    save_backbone(tmp_path / "models", CoverUNet(2, 1, config["channels"], config["decoder_channels"]), config)
    bad = tmp_path / "scan.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    last = bundle_error("run", "--config_file", str(CONFIGS / "cover_pretrain" / "configs" / "inference.json"),
                        "--bundle_root", str(tmp_path), "--dataset_dir", str(bad), "--roi_size", "[32, 32]")
    assert last.startswith(f"BadInputError: {bad}: cannot read image")


def test_pretrain_feature_inference_without_a_backbone_names_its_own_setting(tmp_path):
    """Feature extraction reads --model_path (default <bundle_root>/models/model.pt), not --pretrained."""
    model = tmp_path / "models" / "model.pt"
    last = bundle_error("run", "--config_file", str(CONFIGS / "cover_pretrain" / "configs" / "inference.json"),
                        "--bundle_root", str(tmp_path), "--dataset_dir", str(tmp_path))
    assert last.startswith(f"MissingFileError: {model}: pretrained weights file not found (pretrain with "
                           "configs/train.json into this --bundle_root first, or pass --model_path).")
