"""Benchmark building blocks: splits, task files, the pixel InfoNCE baseline loss, the report."""

from __future__ import annotations

import json
import math

import pytest
import torch

from monai_cover.errors import BadInputError
from monai_cover.label_efficiency import fraction_datalist, labeled_cases, load_task, summarise, write_report
from monai_cover.losses import CoverLoss, PixelContrastLoss, pretrain_loss


def _cases(n):
    return [{"image": f"img{i}", "label": f"lab{i}"} for i in range(n)]


def test_fraction_subsets_are_nested_disjoint_from_validation_and_seeded():
    train, test = _cases(50), _cases(7)
    dls = {f: fraction_datalist(train, test, f, seed=3, num_val=10) for f in (0.05, 0.1, 0.25, 1.0)}
    val = dls[1.0]["validation"]
    assert len(val) == 10 and all(d["validation"] == val for d in dls.values())  # one fixed selection set
    assert [len(d["training"]) for d in dls.values()] == [2, 4, 10, 40]
    for small, big in [(0.05, 0.1), (0.1, 0.25), (0.25, 1.0)]:
        assert all(c in dls[big]["training"] for c in dls[small]["training"])
    assert not any(c in val for c in dls[1.0]["training"]) and dls[1.0]["test"] == test
    other = fraction_datalist(train, test, 0.25, seed=4, num_val=10)
    assert other["validation"] == val and other["training"] != dls[0.25]["training"]
    assert fraction_datalist(train, test, 0.25, seed=3, num_val=10) == dls[0.25]
    with pytest.raises(ValueError, match="label fraction"):
        fraction_datalist(train, test, 0.0, 0, 10)
    with pytest.raises(BadInputError, match="need more than num_val"):
        fraction_datalist(_cases(5), test, 0.5, 0, 10)


def test_datalist_layout_resolves_relative_paths_and_reports_missing_keys(tmp_path):
    spec = {"train": [{"image": "a.png", "label": ["m1/a.png", "m2/a.png"]}], "test": [], "label_names": ["x", "y"]}
    (tmp_path / "task.json").write_text(json.dumps(spec))
    train, test, names = labeled_cases("datalist", tmp_path / "task.json")
    assert train[0]["image"] == str(tmp_path / "a.png") and train[0]["label"][1] == str(tmp_path / "m2" / "a.png")
    assert names == ["x", "y"] and test == []
    (tmp_path / "bad.json").write_text(json.dumps({"train": []}))
    with pytest.raises(BadInputError, match=r"bad.json: missing key\(s\) test, label_names"):
        labeled_cases("datalist", tmp_path / "bad.json")


@pytest.mark.parametrize("name,mode", [("jsrt_scr", "quick"), ("jsrt_scr", "full"), ("jsrt_scr", "reference"),
                                       ("msd_hippocampus", "quick"), ("msd_hippocampus", "full")])
def test_builtin_tasks_resolve(tmp_path, name, mode):
    task = load_task(name, mode, data=str(tmp_path))
    assert task.data == tmp_path and task.finetune_steps > 0 and task.pretrain_iterations > 0
    assert {"cover", "scratch"} <= set(task.methods) and "channels" in task.common
    assert len(task.seeds) >= 2
    if (name, mode) == ("msd_hippocampus", "quick"):
        # one fraction: 48 sliding-window test evaluations of two fractions cost more CPU than the pretraining
        # budget on a 2-core machine; a single 10% fraction leaves pretraining half of the <= 120 min
        assert task.fractions == [0.1] and task.pretrain_iterations == 1250
    else:
        assert set(task.fractions) >= {0.05, 0.1}
    # the view and init options are spelled out, so a changed bundle default can never pass for an old run
    assert {"init", "appearance", "rotation_sampling"} <= set(task.pretrain)
    if mode == "quick":  # issue 12: >= 3 seeds, every evaluation, widths of at least 16..256
        assert len(task.seeds) >= 3 and task.evaluations == ["finetune", "probe", "transfer"]
        assert task.common["channels"][0] >= 16 and task.probe_steps > 0
    if mode == "reference":  # the reference measurement's protocol (docs/cover-method.md)
        assert task.pretrain_iterations == 1300 and task.finetune_steps == 400 and task.seeds == [0, 1]
        assert task.pretrain["inpainting"] is False and task.seg["image_size"] == [192, 192]


def test_task_file_errors_name_the_file(tmp_path):
    with pytest.raises(BadInputError, match="task file not found .*built-in tasks: jsrt_scr, msd_hippocampus"):
        load_task("nope")
    with pytest.raises(BadInputError, match="no mode 'huge'"):
        load_task("jsrt_scr", "huge", data=str(tmp_path))
    f = tmp_path / "t.json"
    f.write_text(json.dumps({"name": "t", "layout": "datalist", "data": str(tmp_path), "spatial_dims": 2,
                             "methods": ["cover", "simclr"], "fractions": [1.0],
                             "modes": {"quick": {"seeds": [0], "pretrain_iterations": 1, "finetune_steps": 1}}}))
    with pytest.raises(BadInputError, match=r"t.json: unknown method\(s\) simclr"):
        load_task(str(f))
    with pytest.raises(BadInputError, match="not found .*--data"):
        load_task("jsrt_scr", data=str(tmp_path / "missing"))


def test_task_settings_replace_single_values(tmp_path):
    base = load_task("jsrt_scr", data=str(tmp_path))
    task = load_task("jsrt_scr", data=str(tmp_path),
                     settings=["finetune_steps=600", "seg.learning_rate=3e-4", "pretrain.crop_size=128"])
    assert task.finetune_steps == 600 and task.pretrain_iterations == base.pretrain_iterations
    assert task.seg == {**base.seg, "learning_rate": 3e-4} and task.pretrain["crop_size"] == 128
    assert task.pretrain["batch_size"] == base.pretrain["batch_size"]  # merged, not replaced
    for bad, msg in [("finetune_steps", "is not KEY=VALUE"), ("solver.lr=1", "dotted keys must start with"),
                     ("finetune_step=3", r"finetune_step: unknown task key; did you mean finetune_steps\?"),
                     ("seg.learning_rat=0.1", r"seg.learning_rat: unknown cover_seg setting; did you mean "
                                              r"seg.learning_rate\?"),
                     ("pretrain.lamda_vec=0", r"did you mean pretrain.lambda_vec\?"),
                     ("transfer.strid=2", r"did you mean transfer.stride\?"),
                     ("common.num_val=2", r"common.num_val: unknown setting of both bundles")]:
        with pytest.raises(BadInputError, match=f"jsrt_scr.json: .*{msg}"):
            load_task("jsrt_scr", data=str(tmp_path), settings=[bad])


def test_pretrain_loss_by_name():
    assert isinstance(pretrain_loss("cover"), CoverLoss) and pretrain_loss("cover").lambda_vec == 1.0
    assert pretrain_loss("consistency", lambda_vec=1.0).lambda_vec == 0.0
    assert isinstance(pretrain_loss("pixel_contrast"), PixelContrastLoss)
    with pytest.raises(ValueError, match="Unsupported option 'mae'"):
        pretrain_loss("mae")


def test_pixel_contrast_loss_value_with_orthogonal_features():
    """Each pixel's feature is a distinct one-hot vector and the views coincide (zero field): positives have cosine
    1, negatives 0, so each direction's InfoNCE is log(1 + (n - 1) exp(-1 / T))."""
    n, temp = 16, 0.5
    feats = torch.eye(n).reshape(1, n, 4, 4)
    zero, mask = torch.zeros(1, 2, 4, 4), torch.ones(1, 1, 4, 4)
    loss = PixelContrastLoss(temperature=temp, num_samples=64)(None, feats, feats, zero, mask)
    assert loss["loss"].item() == pytest.approx(math.log(1 + (n - 1) * math.exp(-1 / temp)), rel=1e-5)
    # a wrong correspondence (view b shifted by one pixel, field still zero) makes every positive a negative
    wrong = PixelContrastLoss(temperature=temp, num_samples=64)(None, feats, feats.roll(1, -1), zero, mask)
    assert wrong["loss"].item() > loss["loss"].item() + 1.0


def test_pixel_contrast_loss_uses_the_field_and_mask():
    torch.manual_seed(0)
    fa = torch.randn(2, 128, 12, 12, requires_grad=True)  # wide: random features are near-orthogonal
    ddf = torch.zeros(2, 2, 12, 12)
    ddf[:, 1] = 2.0  # x_b(p) = x_a(p + (0, 2)): view b's pixel p matches view a's pixel p + 2 along the last axis
    fb = fa.detach().roll(-2, -1)
    mask = torch.ones(2, 1, 12, 12)
    mask[..., -2:] = 0  # positions whose correspondence falls outside view a
    loss_fn = PixelContrastLoss(temperature=0.1, num_samples=4096)
    right = loss_fn(None, fa, fb, ddf, mask)["loss"]
    wrong = loss_fn(None, fa, fb, torch.zeros_like(ddf), mask)["loss"]
    assert right.item() < 0.1 and wrong.item() > right.item() + 2.0
    flipped = loss_fn(None, fa, fb, -ddf, mask)["loss"]  # the opposite convention is wrong too
    assert flipped.item() > right.item() + 2.0
    right.backward()
    assert fa.grad is not None and fa.grad.abs().sum() > 0
    empty = loss_fn(None, fa, fb, ddf, torch.zeros_like(mask))
    assert empty["loss"].item() == 0.0


def _rec(method, fraction, seed, dice):
    return {"method": method, "fraction": fraction, "pretrain_seed": 0, "seed": seed, "num_train": int(100 * fraction),
            "steps": 10, "seconds": 1.0, "dice": dice, "hd95": 1.0, "dice_per_class": {"a": dice, "b": dice}}


def test_report_mean_std_and_nothing_bold_in_mean_tables(tmp_path):
    records = [_rec("cover", 0.1, 0, 0.8), _rec("cover", 0.1, 1, 0.9), _rec("scratch", 0.1, 0, 0.7),
               _rec("scratch", 0.1, 1, 0.7), _rec("cover", 1.0, 0, 0.9), _rec("scratch", 1.0, 0, 0.95)]
    s = summarise(records)["finetune"]
    assert s["cover"]["0.1"]["mean"] == pytest.approx(0.85) and s["cover"]["0.1"]["std"] == pytest.approx(0.0707107)
    assert s["scratch"]["1.0"]["n"] == 1 and s["scratch"]["1.0"]["std"] == 0.0
    task = load_task("jsrt_scr", data=str(tmp_path))
    task.methods, task.fractions = ["cover", "scratch"], [0.1, 1.0]
    md = write_report(tmp_path, task, records, [], "python -m monai_cover.label_efficiency ...").read_text()
    # the highest mean is not bold: with 2 seeds its interval says nothing (the paired tables decide)
    assert "| COVER | 85.0 ± 7.1 | 90.0 ± 0.0 |" in md
    assert "| scratch (no pretraining) | 70.0 ± 0.0 | 95.0 ± 0.0 |" in md
    assert "Validation Dice" not in md  # records without val_dice (older runs): no validation table
    records[0]["val_dice"], records[1]["val_dice"], records[2]["val_dice"] = 0.6, 0.8, 0.75
    md = write_report(tmp_path, task, records, [], "python -m monai_cover.label_efficiency ...").read_text()
    assert "| COVER | 70.0 ± 14.1 |  |" in md and "| scratch (no pretraining) | 75.0 ± 0.0 |  |" in md
    assert json.loads((tmp_path / "results.json").read_text())["summary"]["finetune"]["cover"]["1.0"]["mean"] == 0.9
    assert (tmp_path / "dice_vs_fraction.png").stat().st_size > 1000


def test_report_header_states_the_budget_the_runs_actually_had(tmp_path):
    task = load_task("jsrt_scr", data=str(tmp_path))
    task.methods, task.fractions, task.pretrain_iterations, task.finetune_steps = ["cover", "scratch"], [0.1], 150, 10
    records = [_rec("cover", 0.1, 0, 0.8), _rec("scratch", 0.1, 0, 0.7)]
    pre = [{"method": "cover", "pretrain_seed": 0, "iterations": 175, "images": 142, "seconds": 60.0, "val_epe": 27.5,
            "val_epe_zero": 39.5}]
    md = write_report(tmp_path, task, records, pre, "cmd").read_text()
    assert "Pretraining: 150 requested, 175 run iterations per method, once (its weights serve every evaluation, " \
        "fraction and seed); fine-tuning: 10 steps for every" in md
    assert "| cover | 0 | 175 | 142 | 1.0 | 27.50 | 39.50 |" in md
    # one fraction: a dot plot of every evaluation instead of curves over a single x
    assert (tmp_path / "dice_by_evaluation.png").stat().st_size > 1000
    assert not (tmp_path / "dice_vs_fraction.png").exists()
    records[1]["steps"] = 12  # whole epochs: another fraction can round up further
    md = write_report(tmp_path, task, records, [], "cmd").read_text()
    assert "Pretraining: 150 iterations per method, once" in md and "fine-tuning: 10 requested, 10-12 run steps" in md


def test_paired_difference_ci_matches_the_t_distribution():
    from monai_cover.label_efficiency.stats import paired_difference

    d = paired_difference([0.82, 0.85, 0.80], [0.80, 0.81, 0.79])  # diffs 0.02, 0.04, 0.01
    sd = math.sqrt(((0.02 - 0.07 / 3) ** 2 + (0.04 - 0.07 / 3) ** 2 + (0.01 - 0.07 / 3) ** 2) / 2)
    half = 4.302652729911275 * sd / math.sqrt(3)  # t(0.975, 2 df)
    assert d["mean"] == pytest.approx(0.07 / 3) and d["n"] == 3
    assert d["low"] == pytest.approx(0.07 / 3 - half) and d["high"] == pytest.approx(0.07 / 3 + half)
    assert d["excludes_zero"] is (d["low"] > 0)  # here the t interval is wide: [-0.014, 0.061]
    assert not d["excludes_zero"]
    tight = paired_difference([0.9, 0.91, 0.92, 0.9], [0.8, 0.8, 0.81, 0.8])
    assert tight["excludes_zero"] and tight["low"] > 0.09
    single = paired_difference([0.9], [0.8])
    assert single["low"] == -math.inf and not single["excludes_zero"]
    with pytest.raises(ValueError, match="equally many"):
        paired_difference([0.9], [])


def test_learning_curve_area_and_steps_to_reach():
    from monai_cover.label_efficiency.stats import curve_area, steps_to_reach

    curve = [[100, 0.2], [200, 0.6], [300, 0.8], [400, 0.8]]
    assert curve_area(curve) == pytest.approx((0.4 * 100 + 0.7 * 100 + 0.8 * 100) / 300)
    assert curve_area([[50, 0.7]]) == 0.7 and math.isnan(curve_area([]))
    assert steps_to_reach(curve, 0.95 * 0.8) == 300 and steps_to_reach(curve, 0.5) == 200
    assert steps_to_reach(curve, 0.9) is None


def test_report_paired_ci_bold_only_when_it_excludes_zero_and_learning_curves(tmp_path):
    task = load_task("jsrt_scr", data=str(tmp_path))
    task.methods, task.fractions = ["cover", "pixel_contrast", "scratch"], [0.1]
    recs = []
    for seed, (c, p, sc) in enumerate([(0.90, 0.85, 0.80), (0.91, 0.80, 0.80), (0.92, 0.90, 0.81)]):
        for m, v in (("cover", c), ("pixel_contrast", p), ("scratch", sc)):
            r = _rec(m, 0.1, seed, v)
            # scratch ends at v; cover gets to 95% of it one check earlier
            r["curve"] = [[10, 0.5 * v], [20, v if m == "cover" else 0.9 * v], [30, v]]
            r["eval"], r["val_dice"] = "finetune", v
            recs.append(r)
        recs.append({"eval": "transfer", "method": "cover", "atlases": 1, "pretrain_seed": 0, "seed": seed,
                     "seconds": 1.0, "dice": c - 0.1, "dice_per_class": {"a": c - 0.1, "b": c - 0.1}, "hd95": 1.0})
        recs.append({"eval": "transfer", "method": "scratch", "atlases": 1, "pretrain_seed": 0, "seed": seed,
                     "seconds": 1.0, "dice": 0.5, "dice_per_class": {"a": 0.5, "b": 0.5}, "hd95": 1.0})
    task.transfer_atlases = [1]
    md = write_report(tmp_path, task, recs, [], "cmd").read_text()
    # cover - scratch: diffs 0.10, 0.11, 0.11 -> the CI excludes 0 (bold) and survives Holm over the report's 7
    # intervals (p = 0.001 < 0.05 / 7); cover - pixel InfoNCE: 0.05, 0.11, 0.02
    assert "| COVER − scratch | **+10.7 [+9.2, +12.1]** † |" in md
    assert "| COVER − pixel InfoNCE | +6.0 [-5.4, +17.4] |" in md
    assert "| pixel InfoNCE − scratch | +4.7 [-6.5, +15.9] |" in md and "| scratch − pixel InfoNCE" not in md
    # learning curves: steps to 95% of scratch's final validation Dice, per seed
    assert "| COVER | 20 / 20 / 20 |" in md and "| scratch (no pretraining) | 30 / 30 / 30 |" in md
    # transfer: its own table, random init named as such, diffs vs scratch (= random init) bold
    assert "| random init | 50.0 ± 0.0 |" in md and "| COVER − random init | **+31.0 [+28.5, +33.5]** † |" in md
    assert (tmp_path / "learning_curve_f010.png").is_file() and (tmp_path / "transfer_vs_atlases.png").is_file()
