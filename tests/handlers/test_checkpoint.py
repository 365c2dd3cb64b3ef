"""Atomic checkpoints, resume and fallback: a crash or a bad file never costs more than one interval."""

from __future__ import annotations

import logging
import os

import pytest
import torch
from ignite.engine import Engine, Events

from monai_cover.errors import OutputWriteError
from monai_cover.handlers import ResumableCheckpoint
from monai_cover.utils import atomic_write
from monai_cover.weights import load_backbone_state


def _engine(model, opt, sched, stop_at=None):
    def step(engine, _):
        opt.zero_grad()
        model(torch.ones(1, 2)).sum().backward()
        opt.step()
        sched.step()

    eng = Engine(step)
    if stop_at:
        eng.add_event_handler(Events.ITERATION_COMPLETED(once=stop_at), lambda e: e.terminate())
    return eng


def _setup(tmp_path, interval=2, stop_at=None):
    torch.manual_seed(0)
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5)
    eng = _engine(model, opt, sched, stop_at)
    ck = ResumableCheckpoint(tmp_path, {"network": model, "optimizer": opt, "lr_scheduler": sched}, interval=interval)
    ck.attach(eng)
    return eng, model, opt, sched, ck


def test_resume_restores_step_count_weights_optimizer_and_schedule(tmp_path):
    eng, *_ = _setup(tmp_path, stop_at=5)  # "killed" after 5 iterations: last interval checkpoint is 4
    eng.run(range(4), max_epochs=3)
    eng2, model2, opt2, sched2, ck2 = _setup(tmp_path)
    seen = []
    eng2.add_event_handler(Events.ITERATION_STARTED, lambda e: seen.append(e.state.iteration))
    eng2.run(range(4), max_epochs=3)
    assert ck2.loaded_from.name == "checkpoint_00000005.pt"  # terminate() still fires COMPLETED -> saved at 5
    assert seen[0] == 6 and eng2.state.iteration == 12  # first new iteration is 6: 1..5 are not re-run
    assert sched2.last_epoch == 12 and opt2.state_dict()["state"][0]["step"] == 12
    # the same 12 steps without interruption give the same weights: nothing lost, nothing repeated
    eng3, model3, *_ = _setup(tmp_path / "fresh")
    eng3.run(range(4), max_epochs=3)
    assert torch.allclose(model2.weight, model3.weight) and torch.allclose(model2.bias, model3.bias)


def test_truncated_checkpoint_falls_back_to_previous(tmp_path, caplog):
    eng, *_ = _setup(tmp_path, interval=2)
    eng.run(range(4), max_epochs=1)  # checkpoints at 2 and 4
    newest = tmp_path / "checkpoint_00000004.pt"
    newest.write_bytes(newest.read_bytes()[:100])  # truncated
    eng2, *_, ck2 = _setup(tmp_path, interval=2)
    with caplog.at_level(logging.WARNING):
        eng2.run(range(4), max_epochs=1)
    assert ck2.loaded_from.name == "checkpoint_00000002.pt"
    assert "checkpoint_00000004.pt: unreadable checkpoint" in caplog.text
    # the run retrained 3..4 and saved iteration 4 again: the unreadable file was replaced by a readable one (kept
    # aside, not deleted), and rotation (n_saved=2) never removed the newest readable checkpoint
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["checkpoint_00000002.pt", "checkpoint_00000004.pt", "checkpoint_00000004.pt.unreadable"]
    assert torch.load(newest, weights_only=True)["trainer"]["iteration"] == 4
    eng3, *_, ck3 = _setup(tmp_path, interval=2)
    eng3.run(range(4), max_epochs=2)
    assert ck3.loaded_from == newest and eng3.state.iteration == 8


def test_failed_write_keeps_previous_file(tmp_path):
    target = tmp_path / "model.pt"
    torch.save({"w": torch.ones(3)}, target)

    def disk_full(tmp):
        with open(tmp, "wb") as f:
            f.write(b"partial")
        raise OSError(28, "No space left on device")

    with pytest.raises(OutputWriteError, match=r"model\.pt: cannot write, the disk is full \(free space"):
        atomic_write(target, disk_full)
    assert torch.equal(torch.load(target, weights_only=True)["w"], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]  # no temporary file left behind


def test_torch_disk_full_error_names_the_file(tmp_path):
    def torch_disk_full(tmp):  # what torch.save raises when the disk fills up mid-write
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0")

    with pytest.raises(OutputWriteError, match=r"ckpt\.pt: cannot write, the disk is full"):
        atomic_write(tmp_path / "ckpt.pt", torch_disk_full)
    assert list(tmp_path.iterdir()) == []


def test_written_files_follow_the_umask_not_0600(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write(tmp_path / "model.pt", lambda tmp: torch.save({}, tmp))
    finally:
        os.umask(old)
    assert (tmp_path / "model.pt").stat().st_mode & 0o777 == 0o644  # colleagues can read a shared model


class _Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_weights_never_unpickle_objects(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"state_dict": {"w": torch.ones(1)}, "payload": _Evil()}, path)
    with pytest.raises(ValueError, match=r"evil\.pt: not a readable weights file"):
        load_backbone_state(path)
    with pytest.raises(FileNotFoundError, match="missing.pt: pretrained weights file not found"):
        load_backbone_state(tmp_path / "missing.pt")
