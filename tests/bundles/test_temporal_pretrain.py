"""cover_pretrain on sequences (issue 17, ``--temporal_gap``) through ``python -m monai.bundle``: frames as channels,
pairs of frames trained by the temporal loss, the whole network exported and usable for label propagation; one-line
errors for settings that cannot go together and for sequences too short for the gap."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from tests.bundles.conftest import bundle_error
from tests.bundles.test_cover_pretrain import TRAIN, _train


def _write_sequences(folder, frames=(5, 5, 6), size=64):
    """2D+t NIfTI ``(X, Y, T)`` files of a blob moving 2 voxels a frame; returns the first one's frame-0 label."""
    folder.mkdir(parents=True, exist_ok=True)
    grid = np.stack(np.meshgrid(np.arange(size), np.arange(size), indexing="ij"))
    for i, t_len in enumerate(frames):
        seq = np.stack([np.exp(-((grid - np.array([20 + 2 * t + i, 26 - t]).reshape(2, 1, 1)) ** 2).sum(0) / 60.0)
                        + 0.3 * np.sin(grid[0] / 5.0 + i) for t in range(t_len)], -1)
        nib.save(nib.Nifti1Image((100 * seq).astype(np.float32), np.eye(4)), folder / f"cine_{i}.nii.gz")
    (folder / "notes.txt").write_text("not a sequence")
    label = (((grid - np.array([20, 26]).reshape(2, 1, 1)) ** 2).sum(0) < 49).astype(np.uint8)
    nib.save(nib.Nifti1Image(label, np.eye(4)), folder.parent / "label0.nii.gz")
    return folder.parent / "label0.nii.gz"


def test_temporal_pretraining_then_propagation(tmp_path):
    label = _write_sequences(tmp_path / "cines")
    proc = _train(tmp_path / "run", tmp_path / "cines", "--temporal_gap", "2", "--epochs", "2", "--crop_size", "32",
                  "--temporal_transitivity", "0.5")
    # the two-frame pairs' terms are logged, transitivity included (its second prediction ran through the engine)
    assert "loss_sim" in proc.stdout + proc.stderr and "loss_trans" in proc.stdout + proc.stderr
    hist = json.loads((tmp_path / "run" / "outputs" / "2d" / "val_history.json").read_text())
    assert hist and all(h["val_epe"] >= 0 for h in hist)
    from monai_cover.inferers import propagate_file

    out = propagate_file(tmp_path / "run" / "models" / "cover_net.pt", tmp_path / "cines" / "cine_0.nii.gz", label,
                         tmp_path / "propagated")
    data = np.asarray(nib.load(out).dataobj)
    assert data.shape == (64, 64, 5) and np.array_equal(data[..., 0], np.asarray(nib.load(label).dataobj))
    # the gap is a setting of the run: the same folder with another one is refused, nothing trained or replaced
    line = bundle_error("run", "--config_file", TRAIN, "--bundle_root", str(tmp_path / "run"), "--dataset_dir",
                        str(tmp_path / "cines"), "--temporal_gap", "1", "--epochs", "2", "--crop_size", "32",
                        "--channels", "[4,8,8,16,16]", "--decoder_channels", "[16,8,8,8]", "--batch_size", "2",
                        "--num_val", "1", "--temporal_transitivity", "0.5")
    # the changed entry of the view settings is named, not only their digest
    assert line.startswith("RunMismatchError:") and "other settings (views.pairs.temporal_gap 2 -> 1" in line


@pytest.mark.parametrize("extra,expected", [
    (["--modalities", "2"], "--temporal_gap 2 with --modalities: a sequence's channels are its frames"),
    (["--method", "consistency"], "--temporal_gap 2 with --method consistency: pairs of two frames train the field"),
    (["--temporal_transitivity", "-1"], "--temporal_transitivity -1: a loss weight, a number >= 0"),
    (["--temporal_smoothness", "'none'"], "--temporal_smoothness 'none': a loss weight, a number >= 0"),
])
def test_settings_that_cannot_go_with_sequences_stop_in_one_line(tmp_path, extra, expected):
    _write_sequences(tmp_path / "cines", frames=(3, 3))
    line = bundle_error("run", "--config_file", TRAIN, "--bundle_root", str(tmp_path / "run"), "--dataset_dir",
                        str(tmp_path / "cines"), "--temporal_gap", "2", *extra)
    assert expected in line


def test_a_sequence_shorter_than_the_gap_is_named(tmp_path):
    _write_sequences(tmp_path / "cines", frames=(5, 5, 2))
    line = bundle_error("run", "--config_file", TRAIN, "--bundle_root", str(tmp_path / "run"), "--dataset_dir",
                        str(tmp_path / "cines"), "--temporal_gap", "3", "--num_val", "1", "--crop_size", "32",
                        "--channels", "[4,8,8,16,16]", "--decoder_channels", "[16,8,8,8]", "--batch_size", "3")
    assert "cine_2.nii.gz: 2 frames, fewer than the 4 that --temporal_gap 3 pairs across" in line


def test_the_loss_weights_of_two_frame_pairs_reach_the_loss():
    from monai.bundle import ConfigParser

    from monai_cover.losses import CoverLoss, TemporalCoverLoss

    parser = ConfigParser()
    parser.read_config(TRAIN)
    assert isinstance(parser.get_parsed_content("loss"), CoverLoss)  # images: no two-frame pairs
    parser.update({"temporal_gap": 2})
    loss = parser.get_parsed_content("loss")
    # the defaults chosen on held-out JSRT sequences: image matching without bending energy, no transitivity
    assert isinstance(loss, TemporalCoverLoss) and loss.lambda_smooth == 0.0 and loss.lambda_trans == 0.0
    parser = ConfigParser()
    parser.read_config(TRAIN)
    parser.update({"temporal_gap": 2, "temporal_smoothness": 0.5, "temporal_transitivity": 0.5})
    loss = parser.get_parsed_content("loss")
    assert isinstance(loss, TemporalCoverLoss) and loss.lambda_smooth == 0.5 and loss.lambda_trans == 0.5
    assert loss.needs_clean_pairs
