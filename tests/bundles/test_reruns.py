"""Reruns into the same folders: same run resumes, another run refuses in one line, ``--resume False`` starts over
and keeps the old outputs. Before the run guard, a rerun with new data trained 0 iterations and exited 0."""

from __future__ import annotations

import shutil

from tests.bundles.conftest import REPO, TINY_NET, bundle_error, run_bundle

PRE_TRAIN = str(REPO / "bundles" / "cover_pretrain" / "configs" / "train.json")
SEG_TRAIN = str(REPO / "bundles" / "cover_seg" / "configs" / "train.json")


def _pretrain(root, data, *extra):
    return ["run", "--config_file", PRE_TRAIN, "--bundle_root", str(root), "--dataset_dir", str(data), *TINY_NET,
            "--batch_size", "2", "--num_val", "1", "--val_interval", "2", "--checkpoint_interval", "2",
            "--crop_size", "32", "--epochs", "1", *extra]


def _seg(root, data, *extra):
    return ["run", "--config_file", SEG_TRAIN, "--bundle_root", str(root), "--images_dir", str(data / "images"),
            "--labels_dir", str(data / "labels"), "--label_names", "['a','b']", "--image_size", "[48,40]",
            "--roi_size", "[48,40]", *TINY_NET, "--epochs", "1", "--batch_size", "2", "--val_interval", "1", *extra]


def test_pretrain_rerun_with_other_data_refuses_then_starts_over_keeping_the_old_run(tmp_path, png_dir):
    run_bundle(*_pretrain(tmp_path, png_dir))
    out, models = tmp_path / "outputs" / "2d", tmp_path / "models"
    first_model = (models / "model.safetensors").read_bytes()
    fewer = tmp_path / "fewer images"
    shutil.copytree(png_dir, fewer)
    (fewer / "img_0.png").unlink()

    last = bundle_error(*_pretrain(tmp_path, fewer))
    assert last.startswith(f"RunMismatchError: {out}: holds the outputs of a run with other settings (data 5 items")
    assert "-> 4 items, sha1 " in last
    assert "nothing was trained (use another --output_dir, or pass --resume False to start over" in last
    assert (models / "model.safetensors").read_bytes() == first_model  # nothing replaced

    # other settings but a new output folder: the shared model folder still belongs to the first run
    last = bundle_error(*_pretrain(tmp_path, png_dir, "--learning_rate", "0.001", "--output_dir", str(tmp_path / "o2")))
    assert last.startswith(f"RunMismatchError: {models}: holds the outputs")
    assert "learning_rate 0.0001 -> 0.001" in last and "use another --model_dir" in last

    proc = run_bundle(*_pretrain(tmp_path, fewer, "--resume", "false"))
    assert "resumed from" not in proc.stdout + proc.stderr
    (old_out,) = out.glob("replaced_*")
    (old_models,) = models.glob("replaced_*")
    assert (old_out / "checkpoints" / "checkpoint_00000002.pt").is_file()  # the first run's outputs, kept
    assert (old_models / "model.safetensors").read_bytes() == first_model
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["checkpoint_00000002.pt"]  # 4 images, batch 2
    assert (models / "model.safetensors").read_bytes() != first_model

    # the same run again with more epochs extends it
    proc = run_bundle(*_pretrain(tmp_path, fewer, "--epochs", "2"))
    assert "resumed from" in proc.stdout + proc.stderr and (out / "checkpoints" / "checkpoint_00000004.pt").is_file()


def test_seg_rerun_with_other_data_or_settings_refuses(tmp_path, seg2d_dir):
    run_bundle(*_seg(tmp_path, seg2d_dir))
    best = (tmp_path / "models" / "model.pt").read_bytes()
    fewer = tmp_path / "fewer cases"
    shutil.copytree(seg2d_dir, fewer)
    for sub in ("images", "labels"):
        (fewer / sub / "case_7.png").unlink()
    last = bundle_error(*_seg(tmp_path, fewer))
    assert last.startswith(f"RunMismatchError: {tmp_path / 'outputs'}: holds the outputs of a run with other settings"
                           " (data 2 items")
    last = bundle_error(*_seg(tmp_path, seg2d_dir, "--head_levels", "[0,1]"))
    assert "head_levels null -> [0, 1]" in last
    assert (tmp_path / "models" / "model.pt").read_bytes() == best


def test_a_fresh_run_is_not_refused_for_what_its_own_handlers_created(tmp_path, seg2d_dir):
    """TensorBoard handlers create the output folder before training starts: that is not an earlier run's output."""
    run_bundle(*_seg(tmp_path, seg2d_dir))
    assert (tmp_path / "outputs" / "run.json").is_file() and (tmp_path / "models" / "run.json").is_file()


def test_files_replaced_in_place_under_the_same_names_are_other_data(tmp_path, png_dir, seg2d_dir):
    """The run record held the list of paths only: a rerun resumed on new pixels or inverted labels."""
    import numpy as np
    from PIL import Image

    images = tmp_path / "images"
    shutil.copytree(png_dir, images)
    run_bundle(*_pretrain(tmp_path / "pre", images))
    (images / "img_0.png").touch()  # a touched or copied file is the same data: the run resumes
    run_bundle(*_pretrain(tmp_path / "pre", images, "--epochs", "2"))
    Image.fromarray(255 - np.array(Image.open(images / "img_1.png"))).save(images / "img_1.png")
    last = bundle_error(*_pretrain(tmp_path / "pre", images, "--epochs", "3"))
    assert last.startswith(f"RunMismatchError: {tmp_path / 'pre' / 'outputs' / '2d'}: holds the outputs of a run "
                           "with other settings (file contents sha1 ")

    data = tmp_path / "seg"
    shutil.copytree(seg2d_dir, data)
    run_bundle(*_seg(tmp_path / "seg_run", data))
    label = data / "labels" / "case_3.png"
    Image.fromarray((np.array(Image.open(label)) == 0).astype(np.uint8)).save(label)  # inverted in place
    last = bundle_error(*_seg(tmp_path / "seg_run", data, "--epochs", "2"))
    assert "holds the outputs of a run with other settings (file contents sha1 " in last
