"""RunGuard: what a refused rerun says, and outputs no run recorded."""

from __future__ import annotations

import json

import pytest

from monai_cover.errors import RunMismatchError
from monai_cover.handlers import RunGuard


def test_outputs_no_run_recorded_are_refused_and_kept(tmp_path):
    """Files in the output folder without a run record are nobody's run: refused in one line, not adopted."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "checkpoint_00000002.pt").write_bytes(b"x")
    refused = r"holds files that no run of this bundle recorded \(no run.json\); nothing was trained \(use another " \
              r"--output_dir, or pass --resume False"
    with pytest.raises(RunMismatchError, match=refused):
        RunGuard({"seed": 0}, out).check()
    RunGuard({"seed": 0}, out, resume=False).check()  # moved aside, then this run's record
    assert (out / "run.json").is_file() and not (out / "checkpoint_00000002.pt").exists()
    assert [p.name for p in out.glob("replaced_*/*")] == ["checkpoint_00000002.pt"]


def test_changed_plain_settings_name_the_options_that_continue_the_run(tmp_path):
    """A changed default (or flag) is one option away from resuming: the message spells the old values as the command
    line takes them; when a list or the data changed too, no such option is offered (one flag cannot set it back)."""
    out = tmp_path / "out"
    RunGuard({"temporal_smoothness": 1.0, "slicewise": False, "intensity": "ct", "channels": [4, 8]}, out).check()
    (out / "checkpoint_00000002.pt").write_bytes(b"x")
    with pytest.raises(RunMismatchError) as err:
        RunGuard({"temporal_smoothness": 0.0, "slicewise": True, "intensity": "percentile", "channels": [4, 8]},
                 out).check()
    assert "(use another --output_dir, pass --intensity ct --slicewise False --temporal_smoothness 1.0 to continue " \
           "that run, or pass --resume False" in str(err.value)
    with pytest.raises(RunMismatchError) as err:
        RunGuard({"temporal_smoothness": 0.0, "slicewise": False, "intensity": "ct", "channels": [8, 8]}, out).check()
    assert "(use another --output_dir, or pass --resume False" in str(err.value)


VIEWS = {"rotate_deg": 30.0, "scale_range": [0.8, 1.2], "shear_deg": 10.0, "translate_frac": 0.1, "elastic": 0.0}


def test_a_changed_entry_of_a_long_mapping_is_named_not_only_its_digest(tmp_path):
    out = tmp_path / "out"
    RunGuard({"seed": 0, "views": VIEWS}, out).check()
    (out / "checkpoint_00000002.pt").write_bytes(b"x")
    RunGuard({"seed": 0, "views": dict(VIEWS)}, out).check()  # the same views resume
    with pytest.raises(RunMismatchError) as err:
        RunGuard({"seed": 0, "views": {**VIEWS, "rotate_deg": 15.0, "elastic": 2.0}}, out).check()
    assert "(views.elastic 0.0 -> 2.0; views.rotate_deg 30.0 -> 15.0); nothing was trained" in str(err.value)
    assert "sha1" not in str(err.value)


def test_a_changed_entry_of_a_nested_mapping_is_named(tmp_path):
    """The sampler's config is a mapping of its parts' mappings: the changed plain value is named by its path."""
    out = tmp_path / "out"
    views = {"geometry": VIEWS, "pairs": {"cross_modal": None, "temporal_gap": 2, "temporal_share": 0.5},
             "appearance": {"preset": "reference", "overrides": {}}}
    RunGuard({"views": views}, out).check()
    (out / "checkpoint_00000002.pt").write_bytes(b"x")
    RunGuard({"views": json.loads(json.dumps(views))}, out).check()  # the same views resume
    changed = {**views, "pairs": {**views["pairs"], "temporal_gap": 1},
               "appearance": {"preset": "reference", "overrides": {"noise_std": 0.1}}}
    with pytest.raises(RunMismatchError) as err:
        RunGuard({"views": changed}, out).check()
    assert "(views.appearance.overrides {} -> unset; views.appearance.overrides.noise_std unset -> 0.1; " \
           "views.pairs.temporal_gap 2 -> 1); nothing was trained" in str(err.value)
