"""Bad files inside a real bundle run: one line naming the file (no nested traceback), or with
``--skip_bad_files True`` a logged skip per file and a count, and training goes on."""

from __future__ import annotations

import pytest
from PIL import Image

from tests.bundles.conftest import REPO, TINY_NET, blob_case, bundle_error, run_bundle

SEG_TRAIN = str(REPO / "bundles" / "cover_seg" / "configs" / "train.json")
PRE_TRAIN = str(REPO / "bundles" / "cover_pretrain" / "configs" / "train.json")


@pytest.fixture(scope="module")
def messy(tmp_path_factory):
    """10 cases of 48x40; case_2's label holds a value 7 (2 classes declared), case_4's image is not a PNG."""
    root = tmp_path_factory.mktemp("messy data")
    (root / "images").mkdir()
    (root / "labels").mkdir()
    for i in range(10):
        img, lab = blob_case((48, 40), i)
        if i == 2:
            lab[0, 0] = 7
        Image.fromarray(img).save(root / "images" / f"case_{i}.png")
        Image.fromarray(lab).save(root / "labels" / f"case_{i}.png")
    (root / "images" / "case_4.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    return root


def _seg_args(root, data):
    return ["run", "--config_file", SEG_TRAIN, "--bundle_root", str(root), "--images_dir", str(data / "images"),
            "--labels_dir", str(data / "labels"), "--label_names", "['a','b']", "--image_size", "[48,40]",
            "--roi_size", "[48,40]", *TINY_NET, "--epochs", "1", "--batch_size", "2"]


def test_bad_label_stops_the_run_with_one_line(tmp_path, messy):
    last = bundle_error(*_seg_args(tmp_path, messy))
    assert last.startswith("BadInputError: ")
    assert ("labels/case_2.png: label values [7] outside 0..2" in last) or ("images/case_4.png: cannot read" in last)


def test_skip_bad_files_logs_each_and_trains_on_the_rest(tmp_path, messy):
    proc = run_bundle(*_seg_args(tmp_path, messy), "--skip_bad_files", "True", "--val_interval", "1")
    log = proc.stdout + proc.stderr
    assert "skipping " + str(messy / "labels" / "case_2.png") + ": label values [7]" in log
    assert "skipping " + str(messy / "images" / "case_4.png") + ": cannot read image" in log
    # default val_fraction 0.2 of 10 cases: 8 train (2 bad) + 2 validation
    assert "skipped 2 of 8 files" in log or ("skipped 1 of 8 files" in log and "skipped 1 of 2 files" in log)
    assert (tmp_path / "models" / "model.pt").is_file()


def test_pretrain_skips_unreadable_images(tmp_path, messy):
    proc = run_bundle("run", "--config_file", PRE_TRAIN, "--bundle_root", str(tmp_path), "--dataset_dir",
                      str(messy / "images"), *TINY_NET, "--batch_size", "2", "--num_val", "1", "--crop_size", "32",
                      "--epochs", "1", "--skip_bad_files", "True")
    log = proc.stdout + proc.stderr
    assert "skipped 1 of 10 files: " + str(messy / "images" / "case_4.png") in log
    # 9 usable images - 1 validation = 8 training images, batch 2 -> 4 iterations
    assert (tmp_path / "outputs" / "2d" / "checkpoints" / "checkpoint_00000004.pt").is_file()
