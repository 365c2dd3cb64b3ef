"""``benchmarks/temporal.py`` end to end on a tiny budget: per-seed results are written, reused and paired."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--train", "2", "--test", "1", "--frames", "11", "--size", "32", "--crop", "16", "--iterations", "2",
        "--batch", "2", "--threads", "1", "--ranges", "small"]


def _run(out: Path, *args: str, ok: bool = True) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "temporal.py"), "--out", str(out), *TINY, *args],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert (done.returncode == 0) is ok, done.stderr[-2000:]
    return done.stdout if ok else done.stderr


def test_two_seeds_give_a_paired_table_and_a_rerun_reuses_the_measured_seeds(tmp_path):
    methods = ["--methods", "frame-wise COVER", "temporal, transitivity"]
    _run(tmp_path, "--seeds", "0", *methods)
    first = json.loads((tmp_path / "seed0" / "temporal_transitivity.json").read_text())
    assert first["seconds"] > 0 and 0 <= first["metrics"]["dice_gap10"] <= 1
    log = _run(tmp_path, "--seeds", "0", "1", *methods)
    assert "seed 0 temporal, transitivity: reusing" in log and "seed 1 temporal, transitivity: iteration 2/2" in log
    assert json.loads((tmp_path / "seed0" / "temporal_transitivity.json").read_text()) == first
    report = (tmp_path / "results.md").read_text()
    assert "seeds 0, 1" in report and "Paired difference to frame-wise COVER" in report
    row = next(line for line in report.splitlines() if line.startswith("| temporal, transitivity | 2 |"))
    assert row.count("[") == 7  # an interval for each EPE and Dice column
    assert (tmp_path / "dice_vs_gap.png").stat().st_size > 0
    # --report_only trains nothing: a seed without results is named and left out
    log = _run(tmp_path, "--seeds", "0", "1", "2", "--report_only", *methods)
    assert "seed 2 temporal, transitivity: not measured, left out of the report" in log and "iteration 2/2" not in log
    assert not (tmp_path / "seed2").exists()
    assert "| temporal, transitivity | 0, 1 |" in (tmp_path / "results.md").read_text()
    # the same folder with another training setting refuses in one line rather than mixing results
    err = _run(tmp_path, "--seeds", "0", "--lr", "0.01", *methods, ok=False)
    assert err.strip().splitlines()[-1] == (f"temporal.py: {tmp_path} holds results of other settings (lr: 0.0005); "
                                            "use another --out or the same settings")


def test_3d_sequences_have_exact_ground_truth_and_train_a_3d_network(tmp_path):
    """``--dims 3``: 3D+t sequences whose exact fields carry the labels (Dice near 1, far above no motion), a 3D
    network trains on them, and the report says cubes."""
    _run(tmp_path, "--dims", "3", "--seeds", "0", "--methods", "no pretraining", "temporal COVER",
         "--size", "32", "--crop", "32", "--batch", "1")
    report = json.loads((tmp_path / "results.json").read_text())
    exact, zero = report["references"]["exact field"], report["references"]["zero motion"]
    assert exact["epe_gap10"] == 0 and exact["dice_gap10"] > 0.9 and exact["dice_chained_gap10"] > 0.8
    assert zero["epe_gap10"] > 1 and zero["dice_gap10"] < exact["dice_gap10"] - 0.1
    trained = json.loads((tmp_path / "seed0" / "temporal_cover.json").read_text())
    assert trained["seconds"] > 0 and trained["metrics"]["epe_gap1"] > 0
    assert "frames of 32³" in (tmp_path / "results.md").read_text()
    # the 3D folder refuses a 2D run
    err = _run(tmp_path, "--seeds", "0", "--report_only", "--size", "32", "--crop", "32", "--batch", "1", ok=False)
    assert err.strip().splitlines()[-1].startswith(f"temporal.py: {tmp_path} holds results of other settings (dims: 3")


def _jsrt_like(root: Path, cases: list[str]) -> None:
    """A folder in the JSRT/SCR layout: a bright disc (heart) between two dark ellipses (lungs) per case."""
    import numpy as np
    from PIL import Image

    yy, xx = np.mgrid[:96, :96]
    for m in ("images", "masks/left_lung", "masks/right_lung", "masks/heart", "masks/left_clavicle",
              "masks/right_clavicle"):
        (root / m).mkdir(parents=True, exist_ok=True)
    for i, case in enumerate(cases):
        left = ((yy - 48) / 30) ** 2 + ((xx - 28 - i) / 14) ** 2 <= 1
        right = ((yy - 48) / 30) ** 2 + ((xx - 68) / 14) ** 2 <= 1
        heart = (yy - 58) ** 2 + (xx - 48 + i) ** 2 <= 12**2
        image = 120 + 40 * np.sin(xx / 5.0) * np.cos(yy / 7.0) - 80 * (left | right) + 90 * heart
        Image.fromarray(image.clip(0, 255).astype(np.uint8)).save(root / "images" / f"{case}.png")
        none = np.zeros_like(heart)
        for name, mask in (("left_lung", left), ("right_lung", right), ("heart", heart), ("left_clavicle", none),
                           ("right_clavicle", none)):
            Image.fromarray((255 * mask).astype(np.uint8)).save(root / "masks" / name / f"{case}.png")


def test_real_radiographs_as_scenes_read_only_the_train_split(tmp_path):
    """``--images``: each sequence moves one train-split radiograph with its lung and heart labels; the exact field
    carries them (Dice near 1); a test-split case is never opened (its files do not even exist here)."""
    root = tmp_path / "jsrt"
    _jsrt_like(root, ["c0", "c1", "c2"])
    structures = ["right_lung", "left_lung", "heart", "right_clavicle", "left_clavicle"]
    (root / "split.json").write_text(json.dumps({"structures": structures, "train": ["c0", "c1", "c2"],
                                                 "test": ["missing_test_case"]}))
    out = tmp_path / "out"
    _run(out, "--images", str(root), "--seeds", "0", "--methods", "no pretraining", "--motion", "beating",
         "--size", "64", "--crop", "48")
    report = json.loads((out / "results.json").read_text())
    exact, zero = report["references"]["exact field"], report["references"]["zero motion"]
    assert exact["dice_gap10"] > 0.9 and zero["dice_gap10"] < exact["dice_gap10"]
    assert "Sequences of JSRT train-split radiographs" in (out / "results.md").read_text()
    err = _run(tmp_path / "out3d", "--images", str(root), "--dims", "3", ok=False)
    assert err.strip().splitlines()[-1] == "temporal.py: --images takes 2D radiographs (leave out --dims 3)"
    err = _run(tmp_path / "few", "--images", str(root), "--train", "3", ok=False)
    assert err.strip().splitlines()[-1].endswith("3 train cases, fewer than --train + --test = 4")
