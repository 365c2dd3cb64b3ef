"""RunGuard and settings added after a run was recorded: an upgrade must not stop an interrupted run from resuming."""

from __future__ import annotations

import pytest

from monai_cover.errors import RunMismatchError
from monai_cover.handlers import RunGuard


def _record_old_run(out):
    out.mkdir()
    (out / "checkpoint_00000002.pt").write_bytes(b"x")
    RunGuard({"seed": 0}, out).check()  # writes run.json without the setting added later


def test_a_setting_added_later_matches_old_records_at_its_old_value(tmp_path):
    out = tmp_path / "out"
    _record_old_run(out)
    RunGuard({"seed": 0, "slicewise": False}, out, introduced={"slicewise": False}).check()  # resumes
    with pytest.raises(RunMismatchError, match=r"slicewise false -> true"):
        RunGuard({"seed": 0, "slicewise": True}, out, introduced={"slicewise": False}).check()


def test_changed_plain_settings_name_the_options_that_continue_the_run(tmp_path):
    """A changed default (or flag) is one option away from resuming: the message spells the old values as the command
    line takes them; when a list or the data changed too, no such option is offered (one flag cannot set it back)."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "checkpoint_00000002.pt").write_bytes(b"x")
    RunGuard({"temporal_smoothness": 1.0, "slicewise": False, "intensity": "ct", "channels": [4, 8]}, out).check()
    with pytest.raises(RunMismatchError) as err:
        RunGuard({"temporal_smoothness": 0.0, "slicewise": True, "intensity": "percentile", "channels": [4, 8]},
                 out).check()
    assert "(use another --output_dir, pass --intensity ct --slicewise False --temporal_smoothness 1.0 to continue " \
           "that run, or pass --resume False" in str(err.value)
    with pytest.raises(RunMismatchError) as err:
        RunGuard({"temporal_smoothness": 0.0, "slicewise": False, "intensity": "ct", "channels": [8, 8]}, out).check()
    assert "(use another --output_dir, or pass --resume False" in str(err.value)


def test_without_introduced_a_new_setting_is_a_change(tmp_path):
    out = tmp_path / "out"
    _record_old_run(out)
    with pytest.raises(RunMismatchError, match=r"slicewise unset -> false"):
        RunGuard({"seed": 0, "slicewise": False}, out).check()


VIEWS = {"rotate_deg": 30.0, "scale_range": [0.8, 1.2], "shear_deg": 10.0, "translate_frac": 0.1, "elastic": 0.0}


def test_a_changed_entry_of_a_long_mapping_is_named_not_only_its_digest(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "checkpoint_00000002.pt").write_bytes(b"x")
    RunGuard({"seed": 0, "views": VIEWS}, out).check()
    RunGuard({"seed": 0, "views": dict(VIEWS)}, out).check()  # the same views resume
    with pytest.raises(RunMismatchError) as err:
        RunGuard({"seed": 0, "views": {**VIEWS, "rotate_deg": 15.0, "elastic": 2.0}}, out).check()
    assert "(views.elastic 0.0 -> 2.0; views.rotate_deg 30.0 -> 15.0); nothing was trained" in str(err.value)
    assert "sha1" not in str(err.value)


def test_records_without_details_still_show_the_digests(tmp_path):
    import json

    out = tmp_path / "out"
    out.mkdir()
    (out / "checkpoint_00000002.pt").write_bytes(b"x")
    RunGuard({"views": VIEWS}, out).check()
    record = json.loads((out / "run.json").read_text())
    del record["details"]  # as an older version wrote it
    (out / "run.json").write_text(json.dumps(record))
    with pytest.raises(RunMismatchError, match=r"\(views 5 items, sha1 \w+ -> 5 items, sha1 \w+\)"):
        RunGuard({"views": {**VIEWS, "elastic": 2.0}}, out).check()
    RunGuard({"views": VIEWS}, out).check()  # resumes, and the record gains the entries
    assert json.loads((out / "run.json").read_text())["details"]["views.elastic"] == "0.0"
