"""One backbone against scratch on a labeled task: paired runs, the report, and a card that quotes it."""

from __future__ import annotations

import json

import pytest

from monai_cover.label_efficiency.effect import main


def test_a_backbone_and_scratch_fine_tune_on_the_same_labels_and_the_difference_is_paired(task_and_backbone,
                                                                                         tmp_path, capsys):
    task, backbone = task_and_backbone
    out = tmp_path / "out"
    args = ["--task", str(task), "--mode", "tiny", "--backbone", str(backbone.parent), "--steps", "2",
            "--seeds", "0", "1", "--out", str(out)]
    assert main(args) == 0
    doc = json.loads((out / "results.json").read_text())
    runs = {(r["method"], r["seed"]): r for r in doc["runs"]}
    assert set(runs) == {(m, s) for m in ("pretrained", "scratch") for s in (0, 1)}
    for seed in (0, 1):  # the same labeled images and seed; only the starting backbone differs
        b, s = runs[("pretrained", seed)], runs[("scratch", seed)]
        assert b["num_train"] == s["num_train"] == doc["num_train"] == 6 and b["steps"] == s["steps"]
    assert json.loads((out / "finetune" / "pretrained" / "f100_p0_s0" / "train_overrides.json").read_text())[
        "pretrained"] == str(backbone)
    assert json.loads((out / "finetune" / "scratch" / "f100_p0_s0" / "train_overrides.json").read_text())[
        "pretrained"] is None
    d = doc["difference"]
    assert d["n"] == 2 and d["mean"] == pytest.approx(
        sum(runs[("pretrained", s)]["dice"] - runs[("scratch", s)]["dice"] for s in (0, 1)) / 2)
    assert "Paired difference over 2 label seeds" in (out / "results.md").read_text()
    capsys.readouterr()
    assert main([*args[:5], "cover-no-such-name", *args[6:]]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no released backbone of that name" in err[0]
