"""Retraining a cover_seg bundle on a growing set of labels (what MONAI Label's Train runs), in this environment.

Real bundle runs on tiny 2D cases: the first run starts from the COVER backbone, a retrain after a new label is a new
run that continues from the served model; the served model is replaced only by a run that validated at least as well
(or when asked), a model copied in by hand is kept aside, and a request that cannot be honoured stops in one line.
The same, through a real MONAI Label server: ``tests/integration/test_monailabel.py``.
"""

from __future__ import annotations

import json
import shutil

import pytest
from PIL import Image

from monai_cover.errors import BadInputError, BadSettingError, find_cover_error
from monai_cover.labeling import RetrainRuns, file_sha1, retrain, served_run, split_validation, train_options
from monai_cover.networks import CoverUNet
from monai_cover.weights import save_backbone
from tests.bundles.conftest import REPO, blob_case

CHANNELS, DECODER = [4, 8, 8, 16, 16], [16, 8, 8, 8]
FIRST = {"iterations": 10, "image_size": [48, 40], "roi_size": [48, 40], "batch_size": 2, "val_interval": 5}


@pytest.fixture
def setup(tmp_path):
    """A bundle copy labeling structures a and b, a tiny 2D COVER backbone, and 4 labeled cases (image, label)."""
    bundle = tmp_path / "cover_seg"
    shutil.copytree(REPO / "bundles" / "cover_seg", bundle)
    meta_file = bundle / "configs" / "metadata.json"
    meta = json.loads(meta_file.read_text())
    meta["network_data_format"]["outputs"]["pred"]["channel_def"] = {"0": "background", "1": "a", "2": "b"}
    meta_file.write_text(json.dumps(meta))
    backbone = save_backbone(tmp_path / "backbone", CoverUNet(2, 1, CHANNELS, DECODER),
                             {"spatial_dims": 2, "in_channels": 1, "channels": CHANNELS, "decoder_channels": DECODER})
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    items = []
    for i in range(4):
        img, lab = blob_case((48, 40), i)
        Image.fromarray(img).save(tmp_path / "images" / f"case_{i}.png")
        Image.fromarray(lab).save(tmp_path / "labels" / f"case_{i}.png")
        items.append({"image": str(tmp_path / "images" / f"case_{i}.png"),
                      "label": str(tmp_path / "labels" / f"case_{i}.png")})
    return bundle, str(backbone["pt"]), items


def test_a_retrain_after_new_labels_continues_from_the_served_model_as_a_new_run(setup):
    bundle, backbone, items = setup
    first = retrain(bundle, items[:2], FIRST, backbone=backbone)
    assert first["status"] == "served"
    assert first["start"] == {"from": "backbone", "backbone": backbone, "sha1": file_sha1(backbone)}
    assert first["served_dice"] is None and 0.0 <= first["dice"] <= 1.0
    served = json.loads((bundle / "models" / "model.json").read_text())
    assert served["retrain"]["run"] == first["run"] and served["settings"]["label_names"] == ["a", "b"]
    assert served_run(bundle / "models") == first["run"]
    first_model = (bundle / "models" / "model.pt").read_bytes()

    second = retrain(bundle, items[:3], {"iterations": 10, "batch_size": 2, "val_interval": 5}, backbone=backbone)
    assert second["run"] != first["run"]
    assert second["start"] == {"from": "model", "sha1": file_sha1(bundle / "runs" / first["run"] / "models" /
                                                                  "model.pt"), "run": first["run"]}
    # the model it started from, as it was then, and the settings it inherited from it
    assert (bundle / "runs" / second["run"] / "start" / "model.pt").read_bytes() == first_model
    assert second["settings"]["roi_size"] == [48, 40] and second["settings"]["image_size"] == [48, 40]
    assert [lab["image"] for lab in second["labels"]] == ["case_0", "case_1", "case_2"]
    assert second["labels"][2]["sha1"] == file_sha1(items[2]["label"])
    assert set(first["validation"]) <= set(second["validation"])  # still held out
    # scored on the same images, and served only when at least as good
    assert second["served_dice"] == pytest.approx(first["dice"]) if second["validation"] == first["validation"] \
        else second["served_dice"] is not None
    now = json.loads((bundle / "models" / "model.json").read_text())["retrain"]["run"]
    assert now == (second["run"] if second["dice"] >= second["served_dice"] else first["run"])
    assert second["status"] == ("served" if now == second["run"] else "kept")
    records = json.loads((bundle / "runs" / second["run"] / "retrain.json").read_text())
    assert records["status"] == second["status"] and records["dice"] == second["dice"]


def test_a_worse_run_is_not_served_unless_asked_and_a_hand_copied_model_is_kept_aside(setup):
    bundle, backbone, items = setup
    good = retrain(bundle, items[:3], {**FIRST, "iterations": 40}, backbone=backbone)
    # from the backbone again with a learning rate that changes nothing: the random head scores lower
    worse = {**FIRST, "learning_rate": 1e-12, "iterations": 2, "continue_from_model": False}
    kept = retrain(bundle, items[:3], worse, backbone=backbone)
    assert kept["status"] == "kept" and kept["dice"] < kept["served_dice"] == pytest.approx(good["dice"])
    assert served_run(bundle / "models") == good["run"]

    # the served model as if copied in by hand (its model.json names no run): replacing it keeps a copy
    record = json.loads((bundle / "models" / "model.json").read_text())
    del record["retrain"]
    (bundle / "models" / "model.json").write_text(json.dumps(record))
    by_hand = (bundle / "models" / "model.pt").read_bytes()
    forced = retrain(bundle, items[:3], {**worse, "promote": ["always", "if_better"]}, backbone=backbone)
    assert forced["status"] == "served" and served_run(bundle / "models") == forced["run"]
    (aside,) = (bundle / "models").glob("replaced_*")
    assert (aside / "model.pt").read_bytes() == by_hand and forced["replaced_model_kept_in"] == str(aside)


@pytest.mark.parametrize("request_, says", [
    ({"learning_rat": 0.1}, "learning_rat: neither a retrain option (continue_from_model, promote, val_fraction) "
                            "nor a cover_seg train setting"),
    ({"data_file": "x.json"}, "data_file: set by the retraining (the datastore's labels), not by a train request"),
    ({"promote": "sometimes"}, "--promote 'sometimes': not one of if_better, always"),
])
def test_a_request_that_cannot_be_honoured_stops_in_one_line(request_, says):
    with pytest.raises(BadSettingError) as err:
        train_options({"model": "cover_seg", "device": "cuda", **request_})
    assert str(err.value) == says if "neither" not in says else str(err.value).startswith(says)


def test_nothing_to_start_from_or_too_few_labels_stop_in_one_line(setup):
    bundle, backbone, items = setup
    with pytest.raises(BadInputError, match=r"^1 labeled image\(s\) in the datastore: label at least 2"):
        retrain(bundle, items[:1], FIRST, backbone=backbone)
    with pytest.raises(BadSettingError, match=r"^nothing to start training from \(no served model yet\): start "
                                              "the server with --conf pretrained"):
        retrain(bundle, items[:2], FIRST, backbone=None)
    assert not (bundle / "models" / "model.pt").exists()


def test_validation_is_sticky_and_a_stopped_run_is_resumed_only_with_the_same_inputs(tmp_path):
    ids = [f"img{i}" for i in range(10)]
    _, val = split_validation(ids[:5], [], 0.2)
    _, later = split_validation(ids, val, 0.2)
    assert len(val) == 1 and len(later) == 2 and val[0] in later
    assert [len(part) for part in split_validation(["a", "b"], [], 0.0)] == [1, 1]  # always one held out

    runs = RetrainRuns(tmp_path)
    stopped = runs.new()
    runs.write({"run": stopped.name, "status": "training", "inputs": "abc"})
    assert runs.resumable("abc") == stopped and runs.resumable("other") is None
    done = runs.new()
    runs.write({"run": done.name, "status": "served", "inputs": "abc"})
    assert runs.resumable("abc") is None  # a newer run happened since


def test_a_setting_the_bundle_refuses_fails_the_run_with_its_one_line_and_serves_nothing(setup):
    bundle, backbone, items = setup
    with pytest.raises(Exception) as err:
        retrain(bundle, items[:2], {**FIRST, "batch_size": 0}, backbone=backbone)
    assert isinstance(find_cover_error(err.value), BadSettingError)
    (record,) = RetrainRuns(bundle).records()
    assert record["status"] == "failed" and record["error"] == "BadSettingError: --batch_size 0: a whole number >= 1 " \
                                                               "expected"
    assert not (bundle / "models" / "model.pt").exists()
