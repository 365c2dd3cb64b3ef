"""Property-based checks of the view sampler, the valid mask and the warp (hypothesis, small shapes)."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monai_cover.networks.blocks import warp
from monai_cover.transforms import CoverViewSampler
from monai_cover.transforms import functional as Fn

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NO_APPEARANCE = {"prob_contrast": 0.0, "prob_brightness": 0.0, "prob_blur": 0.0, "prob_noise": 0.0, "prob_blocks": 0.0}
ZERO_RANGES = {"rotate_deg": 0.0, "scale_range": (1.0, 1.0), "shear_deg": 0.0, "translate_frac": 0.0}


@st.composite
def shapes(draw):
    """``(crop, grid)``: 2D crops up to 16^2 and 3D up to 8^3, grids up to 6 voxels larger per axis."""
    dims = draw(st.sampled_from([2, 3]))
    hi = 16 if dims == 2 else 8
    crop = tuple(draw(st.integers(2, hi)) for _ in range(dims))
    grid = tuple(c + draw(st.integers(0, 6)) for c in crop)
    return crop, grid


@st.composite
def ranges(draw):
    lo = draw(st.floats(0.25, 1.0))
    return {
        "rotate_deg": draw(st.floats(0.0, 90.0)),
        "scale_range": (lo, draw(st.floats(lo, 1.75))),
        "shear_deg": draw(st.floats(0.0, 20.0)),
        "translate_frac": draw(st.floats(0.0, 0.5)),
        "elastic_magnitude": draw(st.sampled_from([0.0, 0.5, 2.0])),
        "elastic_spacing": draw(st.integers(2, 8)),
    }



def _images(batch: int, grid, seed: int) -> torch.Tensor:
    return torch.rand(batch, 1, *grid, generator=torch.Generator().manual_seed(seed))


def _direct_mask(ddf: np.ndarray) -> np.ndarray:
    """``p + ddf(p)`` inside ``[0, size - 1]`` on every axis, computed independently with numpy (same float32 math)."""
    d = ddf.shape[1]
    inside = np.ones((ddf.shape[0], 1, *ddf.shape[2:]), dtype=bool)
    for axis, size in enumerate(ddf.shape[2:]):
        shape = [1] * (d + 2)
        shape[axis + 2] = size
        pos = np.arange(size, dtype=ddf.dtype).reshape(shape) + ddf[:, axis : axis + 1]
        inside &= (pos >= 0) & (pos <= size - 1)
    return inside


@SETTINGS
@given(shape=shapes(), rng=ranges(), batch=st.integers(1, 2), seed=st.integers(0, 2**31 - 1))
def test_sampler_field_finite_and_mask_consistent(shape, rng, batch, seed):
    crop, grid = shape
    sampler = CoverViewSampler({"spatial_dims": len(crop), "crop_size": crop, **rng}).set_random_state(seed)
    out = sampler(_images(batch, grid, seed))
    ddf, mask = out["ddf"], out["mask"]
    assert ddf.shape == (batch, len(crop), *crop) and mask.shape == (batch, 1, *crop)
    assert torch.isfinite(ddf).all()
    assert torch.isfinite(out["view_a"]).all() and torch.isfinite(out["view_b"]).all()
    assert set(torch.unique(mask).tolist()) <= {0.0, 1.0}
    assert torch.equal(mask, Fn.valid_mask(ddf))
    np.testing.assert_array_equal(mask.numpy().astype(bool), _direct_mask(ddf.numpy()))


@SETTINGS
@given(shape=shapes(), batch=st.integers(1, 2), channels=st.integers(1, 2), seed=st.integers(0, 2**31 - 1))
def test_warp_zero_field_is_identity(shape, batch, channels, seed):
    _, grid = shape
    x = torch.randn(batch, channels, *grid, generator=torch.Generator().manual_seed(seed))
    zero = torch.zeros(batch, len(grid), *grid)
    torch.testing.assert_close(warp(x, zero), x, atol=1e-5, rtol=0.0)


@SETTINGS
@given(shape=shapes(), batch=st.integers(1, 2), seed=st.integers(0, 2**31 - 1))
def test_zero_ranges_give_zero_field(shape, batch, seed):
    crop, grid = shape
    sampler = CoverViewSampler({"spatial_dims": len(crop), "crop_size": crop, **ZERO_RANGES},
                               {"overrides": NO_APPEARANCE})
    x = _images(batch, grid, seed)
    out = sampler.set_random_state(seed)(x)
    assert torch.equal(out["ddf"], torch.zeros_like(out["ddf"]))
    assert torch.equal(out["mask"], torch.ones_like(out["mask"]))
    # identity field and no appearance change: both views are the same crop of x
    torch.testing.assert_close(out["view_b"], out["view_a"], atol=1e-5, rtol=0.0)
    torch.testing.assert_close(out["view_a"], Fn.crop(x, sampler.params.crop_starts, crop))


def test_warp_zero_field_3d_after_2d():
    """Regression: MONAI\'s Warp reused a cached 2D grid for a 3D field of spatial shape (2, H, W) (its cache
    compares (d, *S) with S); ``warp`` now keeps one Warp per device, dtype and field shape."""
    x2, x3 = torch.randn(1, 1, 3, 4), torch.randn(1, 1, 2, 3, 4)
    torch.testing.assert_close(warp(x2, torch.zeros(1, 2, 3, 4)), x2)
    torch.testing.assert_close(warp(x3, torch.zeros(1, 3, 2, 3, 4)), x3, atol=1e-5, rtol=0.0)
