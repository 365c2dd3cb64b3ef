"""Validation never silently uses training data, and a broken validation section is reported, not ignored."""

from __future__ import annotations

import json
import logging

import pytest

from monai_cover.data import BadInputError, holdout, seg_datalists


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
