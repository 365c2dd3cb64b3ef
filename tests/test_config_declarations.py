"""The settings declarations against the shipped configs, and the first check of every bundle run (in-process)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from monai.bundle import ConfigWorkflow

from monai_cover.config import BUNDLES, MODEL, RUN
from monai_cover.errors import describe_expected

REPO = Path(__file__).resolve().parents[1]


def _top_level_ids(config_file: Path) -> set[str]:
    return {k.split("#")[0] for k in json.loads(config_file.read_text())}


@pytest.mark.parametrize("bundle", sorted(BUNDLES))
def test_every_top_level_id_of_each_config_is_declared_once_as_setting_or_wiring(bundle):
    declared = BUNDLES[bundle]
    configs = {p.stem: p for p in (REPO / "bundles" / bundle / "configs").glob("*.json") if p.stem != "metadata"}
    assert set(declared.wiring) == set(configs)
    for name, path in configs.items():
        settings = {s for s, d in declared.settings.items() if name in d.configs}
        wiring = set(declared.wiring[name])
        assert not settings & wiring, f"{name}: both setting and wiring: {settings & wiring}"
        assert _top_level_ids(path) == settings | wiring, f"{path.name} differs from the declarations"


def test_run_guard_records_exactly_the_settings_declared_for_reruns():
    """RunGuard's keys in each train.json are the settings with the RUN role (plus the derived data and views)."""
    derived = {"cover_pretrain": {"data", "validation_data", "views"}, "cover_seg": {"data"}}
    for bundle, extra in derived.items():
        config = json.loads((REPO / "bundles" / bundle / "configs" / "train.json").read_text())
        recorded = set(config["train"]["run_guard"]["settings"])
        declared = {n for n, s in BUNDLES[bundle].settings.items() if RUN in s.roles}
        assert recorded == declared | extra


def test_a_trained_model_records_and_inference_reads_exactly_the_settings_declared_for_models():
    declared = {n for n, s in BUNDLES["cover_seg"].settings.items() if MODEL in s.roles}
    for name in ("train", "inference"):
        config = json.loads((REPO / "bundles" / "cover_seg" / "configs" / f"{name}.json").read_text())
        assert set(config["model_settings"]) == declared, name
    # each is the model's ("auto") unless given, resolved and checked in one place (weights.model_settings); at
    # evaluation the names and multilabel are the model's by id too, as train.json's metrics and handlers read them
    evaluate = json.loads((REPO / "bundles" / "cover_seg" / "configs" / "evaluate.json").read_text())
    by_id = {"label_names", "multilabel"}
    assert {k for k in declared if evaluate[k] == "auto"} == declared - by_id
    assert {k for k in by_id if evaluate[k] == f"$@trained['{k}']"} == by_id
    assert evaluate["model"]["given"] == {k: f"@{k}" for k in declared}
    inference = json.loads((REPO / "bundles" / "cover_seg" / "configs" / "inference.json").read_text())
    assert {k for k in declared if inference[k] == "auto"} == declared
    assert inference["model_settings"] == {k: f"@{k}" for k in declared}
    assert inference["trained"]["given"] == "@model_settings"
    for config in (evaluate, inference):
        assert ".get(" not in json.dumps(config), "falls back to defaults of its own"


def test_a_bare_model_takes_the_defaults_of_training_for_all_but_its_sizes():
    from monai_cover.weights import BARE_MODEL_DEFAULTS, SIZES, _backbone_defaults

    declared = {n for n, s in BUNDLES["cover_seg"].settings.items() if MODEL in s.roles}
    assert set(BARE_MODEL_DEFAULTS) | set(SIZES) == declared and not set(BARE_MODEL_DEFAULTS) & set(SIZES)
    train = json.loads((REPO / "bundles" / "cover_seg" / "configs" / "train.json").read_text())
    backbone = _backbone_defaults()
    for name, value in BARE_MODEL_DEFAULTS.items():
        if isinstance(train[name], str) and train[name].startswith("$"):  # inherited from the backbone
            expected = {"color": "gray" if backbone["in_channels"] == 1 else "rgb"}.get(name, backbone.get(name))
        else:
            expected = train[name]
        assert value == expected, name


def _first_error(config_files: list[str], **overrides) -> str | None:
    """The one-line error of initializing a bundle run of ``config_files`` with ``overrides`` (``None``: none)."""
    files = [str(REPO / "bundles" / f) for f in config_files]
    workflow = ConfigWorkflow(config_file=files, workflow_type=None, logging_file=False, **overrides)
    try:
        workflow.initialize()
    except Exception as e:  # MONAI wraps what a config expression raises
        line = describe_expected(e)
        assert line is not None, f"not a one-line error: {e!r}"
        return line
    return None


PRETRAIN = ["cover_pretrain/configs/train.json"]
SEG = ["cover_seg/configs/train.json"]


@pytest.mark.parametrize("configs, overrides, expected", [
    (PRETRAIN, {"learning_rat": 0.01}, "--learning_rat: unknown setting of cover_pretrain train; did you mean "
                                       "--learning_rate?"),
    (SEG, {"epoch": 2}, "--epoch: unknown setting of cover_seg train; did you mean --epochs?"),
    (PRETRAIN, {"temporal": True}, "did you mean --temporal_gap?"),
    (SEG + ["cover_seg/configs/evaluate.json"], {"labl_names": ["a"]}, "did you mean --label_names?"),
    (["cover_seg/configs/inference.json"], {"epochs": 3}, "--epochs: unknown setting of cover_seg inference; it is "
                                                         "read by cover_seg's train config, not this run's"),
    (SEG, {"num_atlases": 3}, "read by cover_seg's label_transfer config"),
    (["cover_pretrain/configs/propagate.json"], {"referance_frame": 1}, "did you mean --reference_frame?"),
    (PRETRAIN, {"xyz_unrelated": 1}, "see the settings table in bundles/cover_pretrain/docs/README.md"),
])
def test_an_unknown_option_stops_in_one_line_naming_the_closest_setting(configs, overrides, expected):
    assert expected in (_first_error(configs, **overrides) or "")


@pytest.mark.parametrize("configs, overrides, expected", [
    (PRETRAIN, {"method": "foo"}, "--method 'foo': not one of cover, consistency, pixel_contrast"),
    (PRETRAIN, {"inpainting": "false"}, "--inpainting 'false': not True or False"),
    (PRETRAIN, {"synthetic_contrast": 1.5}, "--synthetic_contrast 1.5: must be in [0, 1]"),
    (PRETRAIN, {"learning_rate": -1.0}, "--learning_rate -1.0: a number > 0 expected"),
    (PRETRAIN, {"epochs": 0}, "--epochs 0: a whole number >= 1 expected"),
    (PRETRAIN, {"spatial_dims": 4}, "--spatial_dims 4: not one of 2, 3"),
    (SEG, {"multilabel": "false"}, "--multilabel 'false': not True or False"),
    (SEG, {"lr_schedule": "step"}, "--lr_schedule 'step': not one of constant, cosine"),
    (SEG, {"cache": "ram"}, "--cache 'ram': not one of memory, disk, none"),
])
def test_a_bad_value_stops_in_one_line_before_anything_is_built(configs, overrides, expected):
    assert (_first_error(configs, **overrides) or "").startswith(f"BadSettingError: {expected}")


def test_overrides_by_path_and_components_of_a_users_own_overlay_pass():
    extra = {"train#trainer#max_epochs": 3, "my_handler": {"_target_": "StatsHandler"}}
    assert _first_error(PRETRAIN, **extra) is None


@pytest.mark.parametrize("bundle", sorted(BUNDLES))
def test_the_bundle_readme_lists_every_setting_as_the_declarations_say(bundle):
    """The README's settings table is generated (python -m monai_cover.config.docs); a stale one fails here."""
    from monai_cover.config.docs import update_readme

    assert update_readme(bundle, REPO / "bundles", write=False), "run: python -m monai_cover.config.docs"
