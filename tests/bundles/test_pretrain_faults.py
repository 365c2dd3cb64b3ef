"""cover_pretrain under faults, through the real entry point: SIGKILL mid-run then rerun; exact repeatability."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import torch

from tests.bundles.conftest import REPO, TINY_NET, run_bundle
from tests.bundles.test_cover_pretrain import TRAIN, _checkpoint_iterations

ARGS = ["--config_file", TRAIN, *TINY_NET, "--batch_size", "2", "--num_val", "1", "--crop_size", "32",
        "--val_interval", "1000", "--checkpoint_interval", "2", "--log_interval", "1"]


def test_sigkill_mid_run_loses_at_most_one_interval_and_resumes(tmp_path, png_dir):
    """Kill -9 a long run once it has written checkpoint 4; the rerun continues from the newest checkpoint with the
    optimiser's and lr schedule's step counts intact."""
    cmd = [sys.executable, "-m", "monai.bundle", "run", *ARGS, "--bundle_root", str(tmp_path),
           "--dataset_dir", str(png_dir), "--epochs", "500"]
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpts = tmp_path / "outputs" / "2d"
    deadline = time.time() + 300
    try:
        while time.time() < deadline and proc.poll() is None:
            if (ckpts / "checkpoints").is_dir() and max(_checkpoint_iterations(ckpts), default=0) >= 4:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "training ended before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        proc.kill()
    killed_at = max(_checkpoint_iterations(ckpts))
    assert killed_at >= 4 and killed_at % 2 == 0
    for p in (ckpts / "checkpoints").glob("checkpoint_*.pt"):  # whatever the kill interrupted, no file is torn
        torch.load(p, weights_only=True)
    # rerun the same command, asking for one more epoch (2 iterations) than the killed run had finished
    epochs = killed_at // 2 + 1
    log = run_bundle("run", *ARGS, "--bundle_root", str(tmp_path), "--dataset_dir", str(png_dir),
                     "--epochs", str(epochs))
    out = log.stdout + log.stderr
    assert f"checkpoint_{killed_at:08d}.pt" in out and f"at iteration {killed_at}" in out
    last = torch.load(ckpts / "checkpoints" / f"checkpoint_{killed_at + 2:08d}.pt", weights_only=True)
    assert last["trainer"]["iteration"] == killed_at + 2
    assert last["lr_scheduler"]["last_epoch"] == killed_at + 2
    assert all(s["step"] == killed_at + 2 for s in last["optimizer"]["state"].values())  # Adam's moments kept


def _scalars(log_dir, tag):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    values = []
    for f in sorted(log_dir.glob("events.out.tfevents.*")):
        acc = EventAccumulator(str(f))
        acc.Reload()
        values += [(e.step, e.value) for e in acc.Scalars(tag)] if tag in acc.Tags()["scalars"] else []
    return values


def test_same_seed_repeats_first_losses_exactly(tmp_path, png_dir):
    runs = []
    for name in ("a", "b"):
        run_bundle("run", *ARGS, "--bundle_root", str(tmp_path / name), "--dataset_dir", str(png_dir),
                   "--epochs", "3", "--seed", "7")
        runs.append(tmp_path / name / "outputs" / "2d")
    first, second = (_scalars(r / "tensorboard", "loss_vec") for r in runs)
    assert len(first) == 6 and first == second  # 6 iterations, bit-identical losses
    assert len({v for _, v in first}) > 1  # the losses change, so the comparison is not vacuous
    wa, wb = (torch.load(r / "checkpoints" / "checkpoint_00000006.pt", weights_only=True)["network"] for r in runs)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    run_bundle("run", *ARGS, "--bundle_root", str(tmp_path / "c"), "--dataset_dir", str(png_dir),
               "--epochs", "3", "--seed", "8")
    assert _scalars(tmp_path / "c" / "outputs" / "2d" / "tensorboard", "loss_vec") != first
