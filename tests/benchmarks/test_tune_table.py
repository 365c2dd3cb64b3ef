"""``benchmarks/tune.py``: its variants are valid task settings and its table reads both kinds of variant folder."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from monai_cover.label_efficiency import load_task

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import tune  # noqa: E402


@pytest.mark.parametrize("task", sorted(tune.VARIANTS))
def test_every_variant_resolves(task, tmp_path):
    for name, (methods, settings) in tune.VARIANTS[task].items():
        t = load_task(task, "quick", str(tmp_path), settings)
        assert set(methods) <= set(t.methods), name
    mild = load_task("jsrt_scr", "quick", str(tmp_path), tune.VARIANTS["jsrt_scr"]["pretrain300_mild_ranges"][1])
    assert mild.pretrain["train#sampler#geometry#rotate_deg"] == 15.0 and mild.pretrain_iterations == 300


def test_table_reads_finetune_and_pretrain_only_variants(tmp_path):
    (tmp_path / "ft").mkdir()
    (tmp_path / "ft" / "results.json").write_text(json.dumps({
        "pretrain": [{"method": "cover", "pretrain_seed": 0, "val_epe": 27.5, "val_epe_zero": 39.5},
                     {"method": "cover", "pretrain_seed": 1, "val_epe": 9.0, "val_epe_zero": 39.5}],
        "summary": {"cover": {"0.1": {"n": 2, "mean": 0.88, "std": 0.01, "val_mean": 0.875, "val_std": 0.02}},
                    "scratch": {"0.1": {"n": 2, "mean": 0.883, "std": 0.0}}}}))
    done = tmp_path / "pt" / "pretrain" / "cover" / "p0" / "done.json"
    done.parent.mkdir(parents=True)
    done.write_text(json.dumps({"iterations": 300, "val_epe": 20.25, "val_epe_zero": 39.5}))
    lines = tune.table(tmp_path, ["ft", "pt", "missing"]).splitlines()
    assert lines[2] == "| ft | finetune | cover | 10% | 2 | 87.5 ± 2.0 | 88.0 ± 1.0 | 27.50 (39.50) |"
    assert lines[3] == "| ft | finetune | scratch | 10% | 2 |  | 88.3 ± 0.0 |  |"
    assert lines[4] == "| pt | | cover (pretraining only, 300 it) | | | | | 20.25 (39.50) |"
    assert len(lines) == 5
    # a results.json with every evaluation: one row per evaluation, atlas counts named as such
    (tmp_path / "all").mkdir()
    (tmp_path / "all" / "results.json").write_text(json.dumps({"pretrain": [], "summary": {
        "probe": {"cover": {"0.1": {"n": 3, "mean": 0.5, "std": 0.1, "val_mean": 0.4, "val_std": 0.0}}},
        "transfer": {"cover": {"k3": {"n": 3, "mean": 0.7, "std": 0.0}}}}}))
    assert tune.table(tmp_path, ["all"]).splitlines()[2:] == [
        "| all | probe | cover | 10% | 3 | 40.0 ± 0.0 | 50.0 ± 10.0 |  |",
        "| all | transfer | cover | 3 atlases | 3 |  | 70.0 ± 0.0 |  |"]
