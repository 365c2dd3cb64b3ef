"""cover_seg inference never loses or silently replaces a prediction: subfolders are mirrored, existing files are
skipped (``--overwrite True`` replaces them), colliding names stop before anything is written, bad files are skipped
with ``--skip_bad_files True`` and the run then ends with exit 1 and a one-line summary."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from monai_cover.networks import CoverSegNet
from tests.bundles.conftest import REPO, TINY_NET, blob_case, bundle_error, run_bundle

INFER = str(REPO / "bundles" / "cover_seg" / "configs" / "inference.json")
ARGS_2D = ["--label_names", "['a','b']", "--image_size", "[48,40]", "--roi_size", "[48,40]", *TINY_NET]


@pytest.fixture()
def bundle(tmp_path):
    """A bundle root with a (random) tiny model and patient folders that both hold ``image.png``."""
    torch.manual_seed(0)
    net = CoverSegNet(2, 1, 3, [4, 8, 8, 16, 16], [16, 8, 8, 8])
    (tmp_path / "models").mkdir()
    torch.save(net.state_dict(), tmp_path / "models" / "model.pt")
    data = tmp_path / "scans"
    for i, patient in enumerate(("patA", "patB")):
        (data / patient).mkdir(parents=True)
        Image.fromarray(blob_case((48, 40), i)[0]).save(data / patient / "image.png")
    return tmp_path, data


def _infer(root, data, *extra):
    return ["run", "--config_file", INFER, "--bundle_root", str(root), "--dataset_dir", str(data), *ARGS_2D, *extra]


def test_same_names_in_subfolders_give_separate_predictions_and_reruns_skip(bundle):
    root, data = bundle
    proc = run_bundle(*_infer(root, data))
    pred = root / "predictions"
    outputs = sorted(str(p.relative_to(pred)) for p in pred.rglob("*_seg.*"))
    assert outputs == ["patA/image_seg.nii.gz", "patA/image_seg.png", "patB/image_seg.nii.gz", "patB/image_seg.png"]
    assert f"predictions in {pred}: 2 written, 0 skipped" in proc.stdout + proc.stderr

    Image.fromarray(np.zeros((48, 40), np.uint8)).save(pred / "patA" / "image_seg.png")  # "a user's edited file"
    proc = run_bundle(*_infer(root, data))
    log = proc.stdout + proc.stderr
    assert f"skipping {data / 'patA' / 'image.png'}: {pred / 'patA' / 'image_seg.nii.gz'} exists" in log
    assert "0 written, 2 skipped" in log
    assert not np.array(Image.open(pred / "patA" / "image_seg.png")).any()  # untouched

    proc = run_bundle(*_infer(root, data, "--overwrite", "True"))
    assert "2 written, 0 skipped" in proc.stdout + proc.stderr
    assert f"replacing {pred / 'patA' / 'image_seg.png'}" in proc.stdout + proc.stderr


def test_an_interrupted_prediction_is_never_taken_for_a_finished_one(bundle):
    """Writers write under a temporary name and rename when complete; a rerun predicts again any input whose outputs
    are missing or empty (a run killed before this left a 0-byte NIfTI that every rerun skipped)."""
    root, data = bundle
    run_bundle(*_infer(root, data))
    pred = root / "predictions"
    assert not list(pred.rglob("*.partial*"))  # every file has its final name
    (pred / "patA" / "image_seg.nii.gz").write_bytes(b"")  # what a kill during the write used to leave
    (pred / "patB" / "image_seg.png").unlink()  # and a case with one of its two outputs
    proc = run_bundle(*_infer(root, data))
    log = proc.stdout + proc.stderr
    assert "2 written, 0 skipped" in log and "this input's outputs were incomplete" in log
    assert (pred / "patA" / "image_seg.nii.gz").stat().st_size > 0 and (pred / "patB" / "image_seg.png").is_file()


def test_colliding_prediction_names_stop_before_writing(bundle):
    root, data = bundle
    Image.fromarray(blob_case((48, 40), 5)[0]).convert("L").save(data / "patA" / "image.jpg")
    last = bundle_error(*_infer(root, data))
    assert last.startswith(f"BadInputError: {data / 'patA' / 'image.png'}: its prediction ")
    assert f"would overwrite that of {data / 'patA' / 'image.jpg'}" in last or "image.jpg" in last
    assert not (root / "predictions").exists() or not any((root / "predictions").rglob("*_seg.*"))


def test_skip_bad_files_predicts_the_rest_then_fails_with_a_summary(bundle):
    root, data = bundle
    bad = data / "pat0" / "image.png"  # sorted first: the default run stops before writing anything
    bad.parent.mkdir()
    bad.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    last = bundle_error(*_infer(root, data))  # default: stop at the bad file, one line naming it
    assert last.startswith(f"BadInputError: {bad}: cannot read image")

    last = bundle_error(*_infer(root, data, "--skip_bad_files", "True"))
    assert last.startswith(f"PredictionError: predictions in {root / 'predictions'}: 2 written, 0 skipped")
    assert f"1 failed (first: {bad}: cannot read image" in last
    assert (root / "predictions" / "patB" / "image_seg.png").is_file()


def test_inference_config_resolves_without_dataset_dir():
    """MONAI Label parses ``preprocessing``/``postprocessing``/``network_def`` with no ``dataset_dir``: the saving
    layout must not need the input list then."""
    from monai.bundle import ConfigParser
    from monai.transforms import Compose, SaveImaged

    parser = ConfigParser()
    parser.read_config(INFER)
    post = parser.get_parsed_content("postprocessing")
    savers = [t for t in post.transforms if isinstance(t, SaveImaged)]
    assert isinstance(post, Compose) and savers and savers[0].saver.folder_layout.data_root_dir == ""
    assert isinstance(parser.get_parsed_content("network_def"), CoverSegNet)


def test_rgb_input_is_predicted_like_training_reads_it(bundle):
    """Training turns RGB PNGs into gray; inference used to fail on them when saving."""
    root, data = bundle
    gray = blob_case((48, 40), 3)[0]
    Image.fromarray(np.stack([gray] * 3, -1)).save(data / "patA" / "rgb.png")
    run_bundle(*_infer(root, data))
    pred = np.array(Image.open(root / "predictions" / "patA" / "rgb_seg.png"))
    assert pred.shape == (48, 40) and set(np.unique(pred)) <= {0, 1, 2}
