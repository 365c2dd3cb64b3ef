"""Temporal views (issue 17): frames of a sequence as channels, view a from frame t, view b from frame t + gap.

A pair of one frame (gap 0) must be exactly today's pair of that frame, so its target is exact; a pair of two
frames keeps the same drawn geometry and only changes view b's source frame.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from monai_cover.networks.blocks import warp
from monai_cover.transforms import CoverViewSampler
from tests.transforms.test_sampler import CROP, GRID, smooth_images


def geometry(dims: int) -> dict:
    return {"spatial_dims": dims, "crop_size": CROP[dims]}


def _sequence(batch: int, frames: int, shape, seed: int = 0) -> torch.Tensor:
    """``(B, T, *S)``: independent smooth frames (so a view's source frame can be told from its content)."""
    return torch.cat([smooth_images(batch, shape, seed=seed + 10 * t) for t in range(frames)], 1)


@pytest.mark.parametrize("dims", [2, 3])
def test_one_frame_pairs_reproduce_todays_views_and_targets_exactly(dims):
    seq = _sequence(3, 5, GRID[dims])
    s = CoverViewSampler(geometry(dims), pairs={"temporal_gap": 2, "temporal_share": 0.0}, seed=7)
    s.randomize(3, GRID[dims])
    out = s.generate(seq)
    assert out["gap"].tolist() == [0, 0, 0] and out["pair"].tolist() == [0, 0, 0]
    assert out["view_a"].shape == (3, 1, *(CROP[dims],) * dims)
    rows = torch.arange(3)
    picked = seq[rows, out["frame"]].unsqueeze(1)  # each item's frame as a one-channel image
    plain = CoverViewSampler(geometry(dims))
    ref = plain.generate(picked, replace(s.params, frames=None, moving=None))  # the same draw without the option
    for key in ("view_a", "view_b", "ddf", "mask"):
        torch.testing.assert_close(out[key], ref[key], rtol=0, atol=0)
    # the same seed draws the same geometry and appearance with and without the option (it draws last)
    s0 = CoverViewSampler(geometry(dims), seed=7)
    s0.randomize(3, GRID[dims])
    np.testing.assert_array_equal(s0.params.rotate, s.params.rotate)
    assert s0.params.seed == s.params.seed


def test_two_frame_pairs_take_view_b_from_frame_t_plus_gap_within_the_sequence():
    dims, frames, gap_max = 2, 4, 3
    seq = _sequence(300, frames, GRID[dims], seed=1)
    s = CoverViewSampler(geometry(dims), pairs={"temporal_gap": gap_max, "temporal_share": 0.7}, seed=3)
    s.randomize(300, GRID[dims])
    out = s.generate(seq)
    t, gap, kinds = out["frame"], out["gap"], out["pair"]
    assert ((t >= 0) & (t + gap >= 0) & (t + gap < frames)).all()
    assert set(gap[kinds == 3].abs().tolist()) == {1, 2, 3} and (gap[kinds == 0] == 0).all()
    assert 0.6 < (kinds == 3).float().mean() < 0.8
    assert set(t.tolist()) == set(range(frames))
    # view b is frame t + gap under the same field as a one-frame pair of the same draw
    same = s.generate(seq, s.forced("same"))
    torch.testing.assert_close(same["ddf"], out["ddf"])
    plain = CoverViewSampler(geometry(dims))
    rows = torch.arange(300)
    ref = plain.generate(seq[rows, t + gap].unsqueeze(1), replace(s.params, frames=None, moving=None))
    torch.testing.assert_close(out["view_b"], ref["view_b"])
    torch.testing.assert_close(out["clean_a"], plain.generate(seq[rows, t].unsqueeze(1), replace(
        s.params, frames=None, moving=None, noise_std=np.zeros(300), contrast=np.ones(300), brightness=np.zeros(300),
        block_sizes=np.zeros_like(s.params.block_sizes)))["view_a"])
    forced = s.generate(seq, s.forced("temporal"))
    assert (forced["pair"] == 3).all() and (forced["gap"] != 0).all()
    # clean_b is view b's frame, undeformed, where view a is: view b = clean_b moved by ddf wherever the source
    # and its interpolation neighbours lie inside the crop
    no_appearance = replace(s.params, frames=None, moving=None, noise_std=np.zeros(300), contrast=np.ones(300),
                            brightness=np.zeros(300), block_sizes=np.zeros_like(s.params.block_sizes))
    torch.testing.assert_close(out["clean_b"], plain.generate(seq[rows, t + gap].unsqueeze(1), no_appearance)["view_a"])
    src = out["ddf"] + torch.stack(torch.meshgrid(*[torch.arange(c, dtype=torch.float32) for c in out["ddf"].shape[2:]],
                                                  indexing="ij"))
    inside = ((src >= 1) & (src <= torch.tensor(out["ddf"].shape[2:]).view(1, -1, 1, 1) - 2)).all(1, keepdim=True)
    assert inside.float().mean() > 0.3
    moved = warp(out["clean_b"], out["ddf"])
    assert (moved - out["view_b"]).abs()[inside].max() < 1e-4


def test_gap_is_capped_by_short_sequences_and_bad_settings_are_refused():
    s = CoverViewSampler(geometry(2), pairs={"temporal_gap": 5, "temporal_share": 1.0}, seed=0)
    s.randomize(50, GRID[2])
    out = s.generate(_sequence(50, 2, GRID[2]))
    assert set(out["gap"].tolist()) == {-1, 1}
    with pytest.raises(ValueError, match="2 or more frames"):
        s.generate(smooth_images(50, GRID[2]))
    with pytest.raises(ValueError, match="use one"):
        CoverViewSampler(geometry(2), pairs={"temporal_gap": 2, "cross_modal": 0.5})
    with pytest.raises(ValueError, match="temporal_share"):
        CoverViewSampler(geometry(2), pairs={"temporal_gap": 2, "temporal_share": 1.5})
    with pytest.raises(ValueError, match="temporal_gap >= 1"):
        plain = CoverViewSampler(geometry(2), seed=0)
        plain.randomize(2, GRID[2])
        plain.forced("temporal")
    # off by default: nothing recorded in the settings (earlier runs' settings still match)
    assert CoverViewSampler(geometry(2)).config["pairs"]["temporal_gap"] == 0
    assert CoverViewSampler(geometry(2), pairs={"temporal_gap": 1}).config["pairs"]["temporal_gap"] == 1


def test_validation_measures_the_endpoint_error_on_one_frame_pairs(tmp_path):
    """Two-frame pairs have no known field, so a temporal run's validation pairs every frame with itself."""
    from monai_cover.handlers import CoverValidation

    seq = _sequence(3, 4, GRID[2], seed=2)
    s = CoverViewSampler(geometry(2), pairs={"temporal_gap": 3, "temporal_share": 1.0}, seed=0)
    val = CoverValidation([{"image": x} for x in seq], s, tmp_path, num_images=3, plot=False)
    val._prepare(torch.device("cpu"))
    assert val.views["pair"].tolist() == [0, 0, 0] and val.views["gap"].tolist() == [0, 0, 0]
    assert val.views["view_a"].shape == (3, 1, CROP[2], CROP[2])
