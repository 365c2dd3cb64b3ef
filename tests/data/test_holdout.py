"""Validation never silently uses training data, and a broken validation section is reported, not ignored."""

from __future__ import annotations

import json
import logging

import pytest

from monai_cover.data import holdout, seg_datalists
from monai_cover.errors import BadInputError


def test_holdout_keeps_validation_apart_when_it_can(caplog):
    with caplog.at_level(logging.WARNING):
        train, val = holdout(list("abcdefg"), 2)
    assert train == list("abcde") and val == ["f", "g"] and "validating on the training data" not in caplog.text


def test_too_few_items_warn_that_validation_is_not_held_out(caplog):
    with caplog.at_level(logging.WARNING):
        train, val = holdout(["only.png"], 2)
    assert train == val == ["only.png"]
    assert "only 1 case(s): validating on the training data" in caplog.text


def test_single_labeled_case_warns(tmp_path, caplog):
    datalist = tmp_path / "list.json"
    datalist.write_text(json.dumps({"training": [{"image": "a.png", "label": "a_seg.png"}]}))
    with caplog.at_level(logging.WARNING):
        train, val = seg_datalists(images_dir=None, labels_dir=None, data_file=str(datalist))
    assert train == val and "validating on the training data" in caplog.text


def test_broken_validation_section_is_an_error_not_a_silent_split(tmp_path):
    datalist = tmp_path / "list.json"
    items = [{"image": f"{i}.png", "label": f"{i}_seg.png"} for i in range(5)]
    datalist.write_text(json.dumps({"training": items, "validation": [{"image": "v.png"}]}))
    with pytest.raises(BadInputError, match=r"list\.json: item 0 of 'validation' has no 'label'"):
        seg_datalists(data_file=str(datalist))


@pytest.mark.parametrize("seed", range(5))
def test_grouped_items_never_straddle_the_split(tmp_path, seed):
    """Frames of one patient (``"group"``) all train or all validate; ungrouped items split as before, per item."""
    datalist = tmp_path / "list.json"
    items = [{"image": f"p{p}_f{f}.png", "label": f"p{p}_f{f}_seg.png", "group": f"patient{p}"}
             for p in range(6) for f in range(1 + p % 3)]
    datalist.write_text(json.dumps({"training": items}))
    train, val = seg_datalists(data_file=str(datalist), val_fraction=0.34, seed=seed)
    groups_train, groups_val = {t["group"] for t in train}, {v["group"] for v in val}
    assert not groups_train & groups_val and len(groups_val) == 2  # 0.34 of 6 patients
    assert len(train) + len(val) == len(items)
    datalist.write_text(json.dumps({"training": [{k: v for k, v in i.items() if k != "group"} for i in items]}))
    train, val = seg_datalists(data_file=str(datalist), val_fraction=0.34, seed=seed)
    assert len(val) == round(0.34 * len(items)) and not {v["image"] for v in val} & {t["image"] for t in train}
