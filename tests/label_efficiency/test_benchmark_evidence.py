"""Evidence round 3 (issue 36) without bundle processes: Holm over a report's intervals, pretraining seeds as pairs,
the tested checkpoint's validation Dice in saved results, the converged budget and the runner's order of stages."""

from __future__ import annotations

import json
import threading

import pytest

from monai_cover.errors import BadInputError
from monai_cover.label_efficiency import BenchmarkRunner, load_task, write_report


def _rec(method, seed, dice, pseed=0, fraction=0.1, **extra):
    return {"eval": "finetune", "method": method, "fraction": fraction, "pretrain_seed": pseed, "seed": seed,
            "num_train": 10, "steps": 10, "seconds": 1.0, "dice": dice, "hd95": 1.0,
            "dice_per_class": {"a": dice}, **extra}


@pytest.fixture
def task_file(tmp_path):
    """A user task (layout ``datalist``) whose data file exists; nothing is ever read from the images."""
    cases = [{"image": f"i{i}.png", "label": f"l{i}.png"} for i in range(14)]
    (tmp_path / "data.json").write_text(json.dumps({"train": cases[:10], "test": cases[10:], "label_names": ["a"]}))
    spec = {"name": "fake", "layout": "datalist", "data": str(tmp_path / "data.json"), "spatial_dims": 2,
            "num_val": 2, "methods": ["cover", "pixel_contrast", "scratch"], "fractions": [0.5],
            "evaluations": ["finetune", "probe"], "probe_steps": 3,
            "modes": {"fixed": {"seeds": [0, 1], "pretrain_iterations": 4, "finetune_steps": 7},
                      "conv": {"seeds": [0, 1], "pretrain_seeds": [0, 1], "pretrain_iterations": 4,
                               "converge": {"max_steps": 50, "val_checks": 5}}}}
    (tmp_path / "task.json").write_text(json.dumps(spec))
    return tmp_path / "task.json"


def test_report_counts_its_comparisons_and_marks_those_that_survive_holm(tmp_path):
    task = load_task("jsrt_scr", data=str(tmp_path))
    task.methods, task.fractions = ["cover", "consistency", "pixel_contrast", "scratch"], [0.1]
    values = {"cover": [.90, .91, .92, .90], "consistency": [.80, .79, .81, .84],
              "pixel_contrast": [.83, .81, .85, .82], "scratch": [.8, .8, .8, .8]}
    recs = [_rec(m, s, v[s]) for m, v in values.items() for s in range(4)]
    md = write_report(tmp_path, task, recs, [], "cmd").read_text()
    # 5 intervals: COVER, consistency, pixel InfoNCE - scratch; COVER, consistency - pixel InfoNCE
    assert "this report makes **5 paired comparisons**" in md and "keeps **2** of them significant at 5%" in md
    assert "| COVER − scratch | **+10.7 [+9.2, +12.3]** † |" in md
    # p = 0.049: the interval alone excludes 0 (bold), but it is the third smallest of 5 (0.049 > 0.05 / 3): no †
    assert "| pixel InfoNCE − scratch | **+2.7 [+0.0, +5.5]** |" in md
    assert "| COVER − pixel InfoNCE | **+8.0 [+5.7, +10.3]** † |" in md


def test_pairs_are_pretraining_seed_x_label_seed_with_each_pretraining_seeds_mean(tmp_path):
    task = load_task("jsrt_scr", data=str(tmp_path))
    task.methods, task.fractions, task.pretrain_seeds = ["cover", "scratch"], [0.1], [0, 1]
    recs = []
    for p, gain in ((0, 0.01), (1, 0.04)):  # the second pretraining run helps more
        for s in range(3):
            recs += [_rec("scratch", s, 0.8 + 0.01 * s, p), _rec("cover", s, 0.8 + 0.01 * s + gain + 0.001 * s, p)]
    pre = [{"method": "cover", "pretrain_seed": p, "iterations": 4, "images": 8, "seconds": 6.0, "val_epe": 2.0 + p,
            "val_epe_zero": 6.0, "snapshots": [{"iteration": 1, "val_epe": 5.0}, {"iteration": 4, "val_epe": 2.0 + p}]}
           for p in (1, 0)]
    md = write_report(tmp_path, task, recs, pre, "cmd").read_text()
    assert "Label seeds [0, 1, 2] x pretraining seeds [0, 1]" in md and "over the 6 pairs" in md
    assert "| COVER − scratch | **+2.6 [+0.9, +4.3]** † (p0 +1.1 / p1 +4.1) |" in md
    assert "once per pretraining seed [0, 1]" in md
    # one row per pretraining run, in seed order, with the held-out EPE of each snapshot
    assert "| cover | 0 | 4 | 8 | 0.1 | 2.00 | 6.00 | 1 (5.00), 4 (2.00) |" in md
    assert md.index("| cover | 0 |") < md.index("| cover | 1 |")
    doc = json.loads((tmp_path / "results.json").read_text())
    assert doc["budget"]["pretrain_seeds"] == [0, 1] and {r["pretrain_seed"] for r in doc["runs"]} == {0, 1}


def test_headline_modes(tmp_path):
    for name, fraction in (("msd_hippocampus", 0.1), ("jsrt_scr", 0.05)):
        t = load_task(name, "headline", data=str(tmp_path))
        quick = load_task(name, "quick", data=str(tmp_path))
        assert t.fractions == [fraction] and t.pretrain_seeds == [0, 1] and t.seeds == [0, 1, 2, 3, 4]
        assert t.methods == ["cover", "pixel_contrast", "scratch"] and t.evaluations == ["finetune", "probe"]
        assert t.finetune_steps == 0 and t.converge["max_steps"] > quick.finetune_steps and t.converge["rise"] == 0.01
        assert t.pretrain_snapshots == [0.1, 0.25, 0.5, 1.0]
        # the quick mode's widths, pretraining budget and views: the headline repeats its setting at more seeds
        assert (t.common, t.pretrain_iterations, t.pretrain, t.seg, t.probe_steps) == (
            quick.common, quick.pretrain_iterations, quick.pretrain, quick.seg, quick.probe_steps)
        assert quick.pretrain_seeds == [0] and not quick.converge  # the committed quick results keep their meaning


def test_converge_settings_are_checked(task_file):
    with pytest.raises(BadInputError, match="task.json: mode 'conv' sets both finetune_steps and converge"):
        load_task(str(task_file), "conv", settings=["finetune_steps=5"])
    with pytest.raises(BadInputError, match=r"converge needs .*missing \['val_checks'\]"):
        load_task(str(task_file), "conv", settings=['converge={"max_steps": 5}'])
    with pytest.raises(BadInputError, match=r"pretrain_snapshots are shares .* got \[2\]"):
        load_task(str(task_file), "conv", settings=["pretrain_snapshots=[0.5, 2]"])
    assert load_task(str(task_file), "fixed").pretrain_seeds == [0]  # default: one pretraining per method


def _fake_stages(runner, calls):
    """Replace the bundle runs by records; scratch's converge curves rise until step 30, then gain 0.2 points."""
    lock = threading.Lock()

    def pretrain(method, pseed):
        with lock:
            calls.append(("pretrain", method, pseed))
        runner.pretrain_records.append({"method": method, "pretrain_seed": pseed, "iterations": 4, "seconds": 1.0})
        return f"w-{method}-{pseed}"

    def finetune(method, fraction, pseed, seed, weights, kind="finetune"):
        with lock:
            calls.append((kind, method, pseed, seed, weights))
        if kind == "converge":
            curve = [[10, 0.5], [20, 0.7], [30, 0.8], [40, 0.802], [50, 0.804]]
            return {"eval": kind, "method": method, "fraction": fraction, "pretrain_seed": pseed, "seed": seed,
                    "steps": 50, "seconds": 1.0, "val_dice": 0.804, "val_step": 50, "curve": curve}
        steps = runner.budgets[fraction] if kind == "finetune" else 3
        return _rec(method, seed, 0.8, pseed, fraction, eval=kind, steps=steps)

    runner.pretrain, runner.finetune = pretrain, finetune


def test_runner_chooses_the_budget_from_scratch_first_then_runs_every_pair(task_file, tmp_path):
    runner = BenchmarkRunner(load_task(str(task_file), "conv"), tmp_path / "out", jobs=2, log=lambda m: None)
    calls: list[tuple] = []
    _fake_stages(runner, calls)
    records = runner.run()
    converge = [i for i, c in enumerate(calls) if c[0] == "converge"]
    finetunes = [i for i, c in enumerate(calls) if c[0] == "finetune"]
    # the first pretraining seed's label seeds (for scratch a pretraining seed only draws its random backbone)
    assert sorted(calls[i][1:] for i in converge) == [("scratch", 0, s, None) for s in (0, 1)]
    assert min(finetunes) > max(converge)  # no method is fine-tuned before the budget is known
    assert {c[1:] for c in calls if c[0] == "pretrain"} == {(m, p) for m in ("cover", "pixel_contrast")
                                                             for p in (0, 1)}
    # 40: the last quarter (30-40) gains 0.2 points, and so does 37.5-50; at 30 the last quarter gained 7.5 points
    assert runner.budgets == {0.5: 40} and runner.convergence["0.5"]["converged"]
    assert json.loads((tmp_path / "out" / "converge" / "budget.json").read_text())["0.5"]["budget"] == 40
    assert [r["steps"] for r in records if r["eval"] == "finetune"] == [40] * 12
    # every method (scratch: its pretraining seed's random backbone) x pretraining seed x label seed, in that order
    assert [(r["method"], r["pretrain_seed"], r["seed"], r["eval"]) for r in records] == [
        (m, p, s, e) for m in ("cover", "pixel_contrast", "scratch") for p in (0, 1) for s in (0, 1)
        for e in ("finetune", "probe")]
    assert ("finetune", "cover", 1, 0, "w-cover-1") in calls and ("finetune", "scratch", 1, 0, None) in calls
    assert [(p["method"], p["pretrain_seed"]) for p in runner.pretrain_records] == [
        ("cover", 0), ("cover", 1), ("pixel_contrast", 0), ("pixel_contrast", 1)]


def test_one_job_finishes_each_pretraining_with_its_evaluations_before_the_next_starts(task_file, tmp_path):
    """A run stopped half-way (a CPU session ends) then leaves whole pieces: the budget, and backbones whose every
    evaluation is done, rather than four pretrainings whose weights nothing used yet."""
    runner = BenchmarkRunner(load_task(str(task_file), "conv"), tmp_path / "out", jobs=1, log=lambda m: None)
    calls: list[tuple] = []
    _fake_stages(runner, calls)
    runner.run()
    stages = []
    for c in calls:
        stage = "converge" if c[0] == "converge" else c[1] if c[0] != "pretrain" else f"pretrain {c[1]} p{c[2]}"
        stage = stage if c[0] == "pretrain" or c[0] == "converge" else f"{c[1]} p{c[2]}"
        if not stages or stages[-1] != stage:
            stages.append(stage)
    assert stages == ["converge", "pretrain cover p0", "cover p0", "pretrain cover p1", "cover p1",
                      "pretrain pixel_contrast p0", "pixel_contrast p0", "pretrain pixel_contrast p1",
                      "pixel_contrast p1", "scratch p0", "scratch p1"]


def test_a_finished_pretraining_whose_weights_are_gone_is_redone_only_for_evaluations_left(task_file, tmp_path):
    """Outputs carried without their weights (weights trained on research-only data are not shared)."""
    runner = BenchmarkRunner(load_task(str(task_file), "fixed"), tmp_path / "out", log=lambda m: None)
    runner.prepare()
    ran = []

    def bundle(name, configs, overrides, run_dir):
        ran.append(name)
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "pretrain_overrides.json").write_text(json.dumps(overrides))
        (run_dir / "models").mkdir(parents=True, exist_ok=True)
        (run_dir / "models" / "model.safetensors").write_bytes(b"w")
        return 1.0

    runner._bundle = bundle
    weights = runner.pretrain("cover", 0)
    weights.unlink()
    runner.pretrain("cover", 0)
    assert ran == ["pretrain", "pretrain"] and weights.is_file()  # its fine-tuning and probes are still to run
    weights.unlink()
    for kind in ("finetune", "probe"):
        for seed in (0, 1):
            done = tmp_path / "out" / kind / "cover" / f"f050_p0_s{seed}"
            done.mkdir(parents=True)
            (done / "result.json").write_text("{}")
    runner.pretrain("cover", 0)
    assert ran == ["pretrain", "pretrain"] and not weights.is_file()  # nothing needs them any more


def test_runner_without_converge_fine_tunes_at_the_task_budget_at_once(task_file, tmp_path):
    runner = BenchmarkRunner(load_task(str(task_file), "fixed"), tmp_path / "out", log=lambda m: None)
    calls: list[tuple] = []
    _fake_stages(runner, calls)
    records = runner.run()
    assert not any(c[0] == "converge" for c in calls) and runner.convergence == {}
    # one job: each backbone's runs start in the task's order, fine-tuning first (a failure shows there first)
    assert [c[0] for c in calls if c[1] == "scratch"] == ["finetune", "probe"] * 2
    assert {r["steps"] for r in records if r["eval"] == "finetune"} == {7} and len(records) == 3 * 2 * 2
    assert not (tmp_path / "out" / "converge").exists()


def test_slicewise_pretraining_of_volumes_reports_its_epe_from_where_the_bundle_wrote_it(task_file, tmp_path):
    """--slicewise True on 3D data trains a 2D network, whose outputs are outputs/2d (the runner looked in 3d)."""
    spec = json.loads(task_file.read_text())
    spec.update(spatial_dims=3, pretrain={"slicewise": True})
    task_file.write_text(json.dumps(spec))
    runner = BenchmarkRunner(load_task(str(task_file), "fixed"), tmp_path / "out")
    runner.prepare()

    def bundle(name, configs, overrides, run_dir):
        assert overrides["slicewise"] is True and overrides["spatial_dims"] == 3
        (run_dir / "outputs" / "2d").mkdir(parents=True)
        (run_dir / "outputs" / "2d" / "val_history.json").write_text(json.dumps(
            [{"iteration": 0, "val_epe": 9.0, "val_epe_zero": 9.5}, {"iteration": 4, "val_epe": 3.0,
                                                                       "val_epe_zero": 9.5}]))
        return 1.0

    runner._bundle = bundle
    runner.pretrain("cover", 0)
    assert runner.pretrain_records[-1]["val_epe"] == 3.0 and runner.pretrain_records[-1]["val_epe_zero"] == 9.5


def test_a_finished_run_whose_data_files_changed_under_the_same_names_is_not_reused(task_file, tmp_path):
    """A benchmark rerun after the test labels changed reprinted the old test Dice: the overrides (paths) matched."""
    from monai_cover.label_efficiency.runner import BenchmarkError

    (tmp_path / "l0.png").write_bytes(b"label 0")
    dl = tmp_path / "list.json"
    dl.write_text(json.dumps({"training": [{"image": "x", "label": str(tmp_path / "l0.png")}]}))
    run_dir = tmp_path / "out" / "finetune" / "cover" / "f050_p0_s0"
    overrides = {"bundle_root": str(run_dir), "data_file": str(dl)}
    runner = BenchmarkRunner(load_task(str(task_file), "fixed"), tmp_path / "out")
    run_dir.mkdir(parents=True)
    (run_dir / "train_overrides.json").write_text(json.dumps(overrides))  # as _bundles leaves them
    (run_dir / "train_contents.txt").write_text(runner._contents(overrides))
    assert runner._same_settings("train", overrides, run_dir)
    (tmp_path / "l0.png").write_bytes(b"label 0, edited")
    rerun = BenchmarkRunner(load_task(str(task_file), "fixed"), tmp_path / "out")
    with pytest.raises(BenchmarkError, match="other settings \\(the contents of its data files"):
        rerun._same_settings("train", overrides, run_dir)
