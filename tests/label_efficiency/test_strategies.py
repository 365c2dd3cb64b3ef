"""Next-sample strategies measured: both start from the same image, sets are nested, and the report pairs them."""

from __future__ import annotations

import json

import numpy as np
import pytest

from monai_cover.errors import BadInputError
from monai_cover.label_efficiency.strategies import choose, main


def test_both_strategies_start_alike_and_farthest_adds_the_most_different_image():
    pool = ["a", "b", "c", "d", "e"]
    e = np.eye(3)
    features = {"a": e[0], "b": e[0], "c": e[1], "d": e[2], "e": e[0]}
    random_order = choose("random", pool, features, 5, seed=3)
    assert sorted(random_order) == pool
    assert choose("random", pool, features, 2, seed=3) == random_order[:2]  # nested
    farthest = choose("cover_farthest", pool, features, 3, seed=3)
    assert farthest[0] == random_order[0]
    # whichever image comes first, the next two are the directions not yet labeled: never a second copy of e[0]
    assert {tuple(features[i]) for i in farthest} == {tuple(v) for v in e}
    with pytest.raises(ValueError, match="unknown strategy"):
        choose("first", pool, features, 2, 0)
    with pytest.raises(BadInputError, match="pool of 5"):
        choose("random", pool, features, 6, 0)


def test_each_strategy_fine_tunes_on_its_images_and_the_report_pairs_them(task_and_backbone, tmp_path, capsys):
    task, backbone = task_and_backbone
    out = tmp_path / "out"
    args = ["--task", str(task), "--mode", "tiny", "--backbone", str(backbone), "--steps", "2", "--sizes", "2",
            "--seeds", "0", "--out", str(out)]
    assert main(args) == 0
    doc = json.loads((out / "results.json").read_text())
    runs = {r["strategy"]: r for r in doc["runs"]}
    assert set(runs) == {"random", "cover_farthest"} and all(r["num_train"] == 2 for r in runs.values())
    assert runs["random"]["images"][0] == runs["cover_farthest"]["images"][0]
    for strategy, r in runs.items():
        used = json.loads((out / "datalists" / f"{strategy}_n002_s0.json").read_text())["training"]
        assert [c["image"].rsplit("/", 1)[1] for c in used] == r["images"]
        assert 0.0 <= r["dice"] <= 1.0
    row = doc["summary"][0]
    assert row["labeled"] == 2 and row["difference"]["mean"] == pytest.approx(
        runs["cover_farthest"]["dice"] - runs["random"]["dice"])
    assert "| 2 |" in (out / "results.md").read_text() and (out / "dice_by_strategy.png").is_file()
    assert len(list((out / "features").glob("*.npy"))) == 6  # the pool: 8 train cases minus 2 held out

    # a rerun reads every run back; a missing backbone is one line
    assert main(args) == 0
    assert json.loads((out / "results.json").read_text())["runs"] == doc["runs"]
    capsys.readouterr()
    assert main([*args[:5], str(tmp_path / "nothing.safetensors"), *args[6:]]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--backbone" in err[0] and "no such file" in err[0]
    # the same file replaced by other weights: its runs would mix with the first backbone's, so it is refused
    backbone.write_bytes(backbone.read_bytes()[:-4] + b"\0\0\0\0")
    assert main(args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "its runs fine-tuned from other weights" in err[0] and "use another --out" in err[0]
