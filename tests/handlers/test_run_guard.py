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


def test_without_introduced_a_new_setting_is_a_change(tmp_path):
    out = tmp_path / "out"
    _record_old_run(out)
    with pytest.raises(RunMismatchError, match=r"slicewise unset -> false"):
        RunGuard({"seed": 0, "slicewise": False}, out).check()
