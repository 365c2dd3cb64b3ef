"""The whole benchmark suite end to end on tiny synthetic 2D data (a user task file of layout ``datalist``)."""

from __future__ import annotations

import json

import pytest

from monai_cover.label_efficiency.__main__ import main
from tests.label_efficiency.conftest import TINY, write_blob_datalist


@pytest.fixture(scope="module")
def task_file(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench task")
    data = write_blob_datalist(root, n_train=10, n_test=4)
    task = {"name": "blobs", "title": "synthetic blobs", "layout": "datalist", "data": str(data),
            "spatial_dims": 2, "multilabel": False, "num_val": 2,
            "methods": ["cover", "consistency", "pixel_contrast", "scratch"], "fractions": [0.5, 1.0],
            "common": TINY, "pretrain": {"crop_size": 32, "batch_size": 2, "val_interval": 2, "nce_samples": 64,
                         "log_interval": 1},
            "seg": {"image_size": [32, 32], "roi_size": [32, 32], "batch_size": 4},
            "evaluations": ["finetune", "probe", "transfer"], "probe": {"learning_rate": 0.01},
            "transfer": {"stride": 2, "top_n": 4}, "transfer_atlases": [1, 2],
            "modes": {"tiny": {"seeds": [0], "pretrain_iterations": 4, "probe_steps": 2, "val_checks": 2,
                               "converge": {"max_steps": 4, "val_checks": 4}, "pretrain_snapshots": [0.25, 1.0]}}}
    (root / "task.json").write_text(json.dumps(task))
    return root / "task.json"


def test_suite_runs_end_to_end_and_resumes(task_file, tmp_path, capsys):
    out = tmp_path / "out"
    cover_weights = str(out / "pretrain" / "cover" / "p0" / "models" / "model.safetensors")
    assert main(["--task", str(task_file), "--mode", "tiny", "--out", str(out), "--jobs", "2"]) == 0
    doc = json.loads((out / "results.json").read_text())
    methods = {"cover", "consistency", "pixel_contrast", "scratch"}
    assert len(doc["runs"]) == 4 * (2 + 2 + 2) and set(doc["summary"]) == {"finetune", "probe", "transfer"}
    assert all(set(by_method) == methods for by_method in doc["summary"].values())
    runs = {(r["eval"], r["method"], r.get("fraction", r.get("atlases"))): r for r in doc["runs"]}
    # the budget: scratch alone first, 4 steps validated every step (50%: 1 step per epoch; 100%: 2), on validation
    conv = doc["convergence"]
    assert set(conv) == {"0.5", "1.0"} and [p[0] for p in conv["0.5"]["mean_curve"]] == [1, 2, 3, 4]
    assert [p[0] for p in conv["1.0"]["mean_curve"]] == [2, 4]
    assert json.loads((out / "converge" / "budget.json").read_text()) == conv
    assert not (out / "converge" / "scratch" / "f050_p0_s0" / "outputs" / "eval").exists()  # test never seen
    for r in doc["runs"]:
        assert 0.0 <= r["dice"] <= 1.0 and set(r["dice_per_class"]) == {"blob"} and 0.0 <= r["val_dice"] <= 1.0
        assert r["num_test_cases"] == 4  # transfer runs hold the 2 validation cases apart from the 4 test cases
        assert r["pretrain_seed"] == 0
        if r["eval"] != "transfer":
            assert r["num_train"] == {0.5: 4, 1.0: 8}[r["fraction"]]
            steps = conv[str(r["fraction"])]["budget"] if r["eval"] == "finetune" else 2
            assert r["steps"] == steps
            # validation Dice of the tested checkpoint (models/model.pt, the best), not of the last check
            run_dir = out / r["eval"] / r["method"] / f"f{round(100 * r['fraction']):03d}_p0_s0"
            best = json.loads((run_dir / "models" / "model.json").read_text())
            assert r["val_dice"] == best["best"] == max(v for _, v in r["curve"])
            assert [r["val_step"], r["val_dice"]] in r["curve"]
    # the learning curve: validation Dice at val_checks points of fine-tuning
    assert len(runs["finetune", "cover", 1.0]["curve"]) == 2 or conv["1.0"]["budget"] == 2
    assert len(runs["probe", "cover", 0.5].get("curve", [])) == 1  # probes validate once, at the end
    # results are ordered by method, then seed, then evaluation, whatever order the jobs finished in
    assert [(r["method"], r["eval"]) for r in doc["runs"][:6]] == [("cover", e) for e in
                                                                   ["finetune"] * 2 + ["probe"] * 2 + ["transfer"] * 2]
    assert {p["method"]: p["iterations"] for p in doc["pretrain"]} == {"cover": 4, "consistency": 4,
                                                                       "pixel_contrast": 4}
    # snapshots at 25% and 100% of the iterations, each with its held-out EPE (validated there: val_interval is 2)
    snaps = next(p for p in doc["pretrain"] if p["method"] == "cover")["snapshots"]
    assert [s["iteration"] for s in snaps] == [1, 4] and all(s["val_epe"] > 0 for s in snaps)
    assert all((out / s["weights"]).is_file() for s in snaps)
    assert json.loads((out / snaps[0]["weights"]).with_name("model.json").read_text())["pretrain_iterations"] == 1
    # why: each snapshot's probe and one-atlas transfer per level, from the random backbone (iteration 0) on
    from monai_cover.label_efficiency.over_pretraining import main as over_pretraining

    assert over_pretraining(["--task", str(task_file), "--mode", "tiny", "--out", str(out), "--methods", "cover",
                             "--levels", "0"]) == 0
    why = json.loads((out / "over_pretraining" / "results.json").read_text())
    assert [(r["eval"], r["method"], r["iteration"]) for r in why["runs"]] == [
        (e, m, it) for m, it in (("scratch", 0), ("cover", 1), ("cover", 4)) for e in ("probe", "transfer")]
    probe_l0 = json.loads((out / "over_pretraining" / "probe" / "cover" / "p0_i4_l0_s0" / "train_overrides.json")
                          .read_text())
    assert probe_l0["head_levels"] == [0] and probe_l0["freeze_backbone"] is True
    assert probe_l0["pretrained"] == str(out / snaps[1]["weights"])
    transfer_l0 = json.loads((out / "over_pretraining" / "transfer" / "cover" / "i1_l0" / "k1_p0_s0" /
                              "transfer_overrides.json").read_text())
    assert transfer_l0["transfer_levels"] == [0] and transfer_l0["num_atlases"] == 1
    assert [p["iteration"] for p in why["points"]] == [1, 4] and (out / "over_pretraining" /
                                                                 "over_pretraining.png").is_file()
    assert "| cover | 4 |" in (out / "over_pretraining" / "results.md").read_text()
    md = (out / "results.md").read_text()
    assert "| method | 50% (4 cases) | 100% (8 cases) |" in md and "| pixel InfoNCE (binary contrast) |" in md
    assert "| method | 1 atlas | 2 atlases |" in md and "| random init (frozen) |" in md
    assert "| COVER − scratch |" in md and "| COVER − pixel InfoNCE |" in md and "pretraining**" in md
    assert "| COVER − random init |" in md  # probe and transfer: scratch means a random, untrained backbone
    assert "### Fine-tuning budget, 50% labels (scratch, validation only)" in md
    for png in ("dice_vs_fraction", "probe_vs_fraction", "transfer_vs_atlases", "learning_curve_f050",
                "convergence_f050"):
        assert (out / f"{png}.png").is_file(), png
    # the probe is the fine-tuning run with a frozen backbone; transfer picks the seed's first labeled cases
    probe = json.loads((out / "probe" / "cover" / "f050_p0_s0" / "train_overrides.json").read_text())
    assert probe["freeze_backbone"] is True and probe["learning_rate"] == 0.01
    tr = json.loads((out / "transfer" / "cover" / "k2_p0_s0" / "transfer_overrides.json").read_text())
    assert tr["num_atlases"] == 2 and tr["transfer_stride"] == 2 and tr["pretrained"] == cover_weights
    atlases = json.loads((out / "datalists" / "transfer_s0.json").read_text())["training"]
    assert atlases == json.loads((out / "datalists" / "f050_s0.json").read_text())["training"][:2]
    # every run goes through the bundles: the same configs, method and weights switched by overrides only
    pre = json.loads((out / "pretrain" / "pixel_contrast" / "p0" / "pretrain_overrides.json").read_text())
    assert pre["method"] == "pixel_contrast" and pre["channels"] == TINY["channels"] and pre["seed"] == 0
    ft = out / "finetune"
    cover = json.loads((ft / "cover" / "f050_p0_s0" / "train_overrides.json").read_text())
    assert cover["pretrained"] == cover_weights and "backbone_seed" not in cover
    scratch = json.loads((ft / "scratch" / "f050_p0_s0" / "train_overrides.json").read_text())
    assert scratch["pretrained"] is None and scratch["backbone_seed"] == 0  # its pretraining seed draws its backbone
    assert json.loads((ft / "cover" / "f050_p0_s0" / "train_overrides.json").read_text())["seed"] == 0
    loss_log = (out / "pretrain" / "pixel_contrast" / "p0" / "pretrain.log").read_text()
    assert "loss_nce" in loss_log and "loss_vec" not in loss_log
    # a rerun (one job at a time) skips every finished run and rewrites the same table, in the same order
    capsys.readouterr()
    assert main(["--task", str(task_file), "--mode", "tiny", "--out", str(out)]) == 0
    assert "done earlier" in capsys.readouterr().out
    def tables(text):
        return text.split("## Fine-tuning")[1].split("Total run time")[0]

    assert tables((out / "results.md").read_text()) == tables(md)
    assert "Validation Dice (%) on the fixed 2-case holdout inside `train`" in md
    # another budget into the same folder is refused instead of mixing budgets in one table
    capsys.readouterr()
    assert main(["--task", str(task_file), "--mode", "tiny", "--out", str(out), "--set", "probe_steps=5"]) == 1
    err = capsys.readouterr().err
    assert "f050_p0_s0 holds a run made with other settings (epochs, val_interval); use another --out" in err
    # a moved output folder still matches its runs (paths inside it are compared relative to it)
    moved = tmp_path / "moved"
    out.rename(moved)
    assert main(["--task", str(task_file), "--mode", "tiny", "--out", str(moved)]) == 0
    assert "done earlier" in capsys.readouterr().out
    assert tables((moved / "results.md").read_text()) == tables(md)
    # its records alone (no weights, predictions or logs) carried to another folder: a rerun reuses every run
    from monai_cover.label_efficiency.records import copy_records

    carried = tmp_path / "carried"
    files = copy_records(moved, carried)
    assert not list(carried.rglob("*.safetensors")) and not list(carried.rglob("*.pt")) and not list(
        carried.rglob("*.log")) and len(files) > 40
    assert main(["--task", str(task_file), "--mode", "tiny", "--out", str(carried)]) == 0
    log = capsys.readouterr().out
    assert "done earlier" in log and "pretraining again" not in log  # every evaluation done: weights not needed
    assert tables((carried / "results.md").read_text()) == tables(md)
    for dest in (carried, moved, moved / "inside"):  # never mixed with another run's records, never into itself
        with pytest.raises(FileExistsError, match=r"(already holds files|inside the output folder)"):
            copy_records(moved, dest)
    # --report_only rewrites the report from results.json alone (runs and datalists may be gone)
    (moved / "results.md").unlink()
    args = ["--task", str(task_file), "--mode", "tiny", "--out", str(moved), "--report_only"]
    assert main(args) == 0 and tables((moved / "results.md").read_text()) == tables(md)
    assert main([*args, "--set", "probe_steps=5"]) == 1
    assert "results.json: made with other settings than task 'blobs' mode 'tiny' (probe_steps)" in \
        capsys.readouterr().err


def test_failed_bundle_run_names_the_run_and_log(task_file, tmp_path, capsys):
    assert main(["--task", str(task_file), "--mode", "tiny", "--out", str(tmp_path / "o"), "--methods", "scratch",
                 "--fractions", "1.0", "--bundles", str(tmp_path / "no_bundles")]) == 1
    err = capsys.readouterr().err
    assert "benchmark: error: train in " in err and "train.log" in err and "\n" in err.strip()


def test_chained_runs_share_a_process_and_a_failure_names_its_run(task_file, tmp_path, capsys, monkeypatch):
    """Fine-tuning and its evaluation run in one process; when the second fails, the error names it, not the first."""
    import shutil

    from monai_cover.label_efficiency.runner import default_bundles_dir

    # the bundle processes import this checkout's monai_cover, not one installed elsewhere
    monkeypatch.setenv("PYTHONPATH", str(default_bundles_dir().parent))
    bundles = tmp_path / "bundles"
    shutil.copytree(default_bundles_dir(), bundles, ignore=shutil.ignore_patterns("models", "eval", "*.pt"))
    (bundles / "cover_seg" / "configs" / "evaluate.json").write_text('{"not json')
    out = tmp_path / "o"
    args = ["--task", str(task_file), "--mode", "tiny", "--out", str(out), "--methods", "scratch", "--fractions", "1.0",
            "--set", "converge={}", "finetune_steps=4"]
    assert main([*args, "--bundles", str(bundles)]) == 1
    err = capsys.readouterr().err
    run_dir = out / "finetune" / "scratch" / "f100_p0_s0"
    assert f"benchmark: error: evaluate in {run_dir} failed" in err and "train.log" in err
    log = (run_dir / "train.log").read_text()
    assert log.count("== bundle run ") == 2  # train finished in this process, then evaluate started in it
    assert (run_dir / "models").is_dir()
    # with the shipped bundles the same folder completes: the finished training is reused, transfer at both atlas
    # counts of the seed ran in one process
    assert main(args) == 0
    transfer_log = (out / "transfer" / "scratch" / "p0_s0.log").read_text()
    assert transfer_log.count("== bundle run transfer") == 2
    for k in (1, 2):
        assert json.loads((out / "transfer" / "scratch" / f"k{k}_p0_s0" / "result.json").read_text())["atlases"] == k
