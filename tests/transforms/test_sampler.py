"""SeVR view generation (spec section 1): ``x_b = warp(x, psi)``, shared crop, appearance on ``x_a`` only, mask.

The ground truth is only useful if ``view_b(p) ~ clean view_a(p + dvf(p))`` really holds where ``mask = 1``; that is
checked numerically, together with shapes, determinism, the documented default ranges and the identity case.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from monai_cover.networks.blocks import warp
from monai_cover.transforms import CoverViewSampler, default_ranges
from monai_cover.transforms import functional as Fn

NO_APPEARANCE = {"prob_contrast": 0.0, "prob_brightness": 0.0, "prob_blur": 0.0, "prob_noise": 0.0, "prob_blocks": 0.0}
IDENTITY = {"rotate_deg": 0.0, "scale_range": (1.0, 1.0), "shear_deg": 0.0, "translate_frac": 0.0}
GRID = {2: (40, 44), 3: (20, 22, 19)}
CROP = {2: 32, 3: 16}


def smooth_images(batch: int, shape, seed: int = 0) -> torch.Tensor:
    """``(B, 1, *S)`` smooth random images (coarse noise, linearly upsampled)."""
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.randn(batch, 1, *[4] * len(shape), generator=gen)
    mode = "bilinear" if len(shape) == 2 else "trilinear"
    return torch.nn.functional.interpolate(coarse, size=tuple(shape), mode=mode, align_corners=True)


def sampler(dims: int, seed: int | None = 0, **kwargs) -> CoverViewSampler:
    s = CoverViewSampler(spatial_dims=dims, crop_size=CROP[dims], **kwargs)
    return s.set_random_state(seed) if seed is not None else s


@pytest.mark.parametrize("dims", [2, 3])
def test_generate_shapes_and_dtypes(dims):
    imgs = smooth_images(3, GRID[dims])
    out = sampler(dims)(imgs)
    crop = (CROP[dims],) * dims
    assert set(out) == {"view_a", "view_b", "dvf", "mask"}
    assert out["view_a"].shape == out["view_b"].shape == (3, 1, *crop)
    assert out["dvf"].shape == (3, dims, *crop)
    assert out["mask"].shape == (3, 1, *crop)
    assert all(v.dtype == torch.float32 for v in out.values())
    assert set(out["mask"].unique().tolist()) <= {0.0, 1.0}
    assert out["mask"].mean() > 0.1  # views overlap (otherwise the ground truth is useless)


def test_integer_images_are_converted_to_float():
    out = sampler(2)((smooth_images(1, GRID[2]) * 100).to(torch.uint8))
    assert all(v.dtype == torch.float32 for v in out.values())


@pytest.mark.parametrize("dims", [2, 3])
def test_mask_is_recomputed_from_the_dvf(dims):
    """``mask(p) = 1`` iff ``p + dvf(p)`` is inside the crop (inclusive voxel centres), computed independently here."""
    out = sampler(dims, seed=1, elastic_magnitude=2.0, elastic_spacing=8)(smooth_images(2, GRID[dims]))
    dvf = out["dvf"].double()
    p = torch.stack(torch.meshgrid(*[torch.arange(CROP[dims], dtype=torch.float64)] * dims, indexing="ij"))[None]
    expected = ((p + dvf >= 0) & (p + dvf <= CROP[dims] - 1)).all(1, keepdim=True).float()
    assert torch.equal(out["mask"], expected)
    assert torch.equal(out["mask"], Fn.valid_mask(out["dvf"]))
    assert 0 < expected.mean() < 1  # both cases occur


def test_valid_mask_known_field():
    """A shift of +3 along axis 0 on an 8x6 grid invalidates exactly the last 3 rows; -2 along axis 1 the first 2."""
    field = torch.zeros(1, 2, 8, 6)
    field[:, 0] = 3.0
    field[:, 1] = -2.0
    expected = torch.zeros(1, 1, 8, 6)
    expected[..., :5, 2:] = 1.0
    assert torch.equal(Fn.valid_mask(field), expected)


@pytest.mark.parametrize("dims", [2, 3])
def test_view_b_equals_view_a_at_displaced_points(dims):
    """Ground truth: ``view_b(p) = view_a(p + dvf(p))`` where ``mask = 1`` (appearance off, so ``view_a`` is clean).

    Checked by warping ``view_a`` with ``dvf``: the crop is shared, so only the crop offset links the full-grid field
    to the crop, and any error there (different crops, dvf not cropped, sign) breaks the equality.
    """
    imgs = smooth_images(2, GRID[dims], seed=3)
    out = sampler(dims, seed=2, **NO_APPEARANCE)(imgs)
    rebuilt = warp(out["view_a"], out["dvf"])
    m = out["mask"].bool().expand_as(rebuilt)
    assert m.float().mean() > 0.2
    torch.testing.assert_close(rebuilt[m], out["view_b"][m], atol=1e-4, rtol=0)
    # and not trivially: the views differ (a real transform was applied)
    assert (out["view_a"] - out["view_b"]).abs().max() > 0.1
    # the crop is shared: view_a is the crop of the image at the drawn start
    s = sampler(dims, seed=2, **NO_APPEARANCE)
    s.randomize(2, GRID[dims])
    torch.testing.assert_close(out["view_a"], Fn.crop(imgs, s.params.crop_starts, (CROP[dims],) * dims))


@pytest.mark.parametrize("dims", [2, 3])
def test_determinism_with_seeds(dims):
    imgs = smooth_images(2, GRID[dims])
    a, b = sampler(dims, seed=7)(imgs), sampler(dims, seed=7)(imgs)
    for key in a:
        assert torch.equal(a[key], b[key]), key
    c = sampler(dims, seed=8)(imgs)
    assert not torch.equal(a["dvf"], c["dvf"])
    assert not torch.equal(a["view_a"], c["view_a"])
    # consecutive draws of one sampler differ
    s = sampler(dims, seed=7)
    first, second = s(imgs), s(imgs)
    assert torch.equal(first["dvf"], a["dvf"]) and not torch.equal(first["dvf"], second["dvf"])


def test_generate_reuses_a_draw():
    """``randomize`` once, ``generate`` twice (e.g. on another device) -> identical views."""
    s = sampler(2)
    imgs = smooth_images(2, GRID[2])
    s.randomize(2, GRID[2])
    a, b = s.generate(imgs), s.generate(imgs)
    for key in a:
        assert torch.equal(a[key], b[key])
    with pytest.raises(ValueError, match="batch"):
        s.generate(smooth_images(3, GRID[2]))
    with pytest.raises(RuntimeError, match="randomize"):
        CoverViewSampler(2, crop_size=32).generate(imgs)


def test_default_ranges_are_the_authors():
    assert default_ranges(2) == {"rotate_deg": 60.0, "scale_range": (0.25, 1.75), "shear_deg": 8.4,
                                 "translate_frac": 0.3}
    assert default_ranges(3) == {"rotate_deg": 15.0, "scale_range": (0.75, 1.25), "shear_deg": 10.0,
                                 "translate_frac": 0.1}
    s2, s3 = CoverViewSampler(2), CoverViewSampler(3)
    assert s2.rotate == pytest.approx(math.radians(60)) and s3.rotate == pytest.approx(math.radians(15))
    assert s2.shear == pytest.approx(math.radians(8.4)) and s3.shear == pytest.approx(math.radians(10))
    assert s2.scale_range == (0.25, 1.75) and s3.scale_range == (0.75, 1.25)
    assert s2.translate_frac == 0.3 and s3.translate_frac == 0.1
    # they are parameters, not constants
    s = CoverViewSampler(2, rotate_deg=5, scale_range=(0.9, 1.1), shear_deg=1, translate_frac=0.05)
    assert s.rotate == pytest.approx(math.radians(5)) and s.scale_range == (0.9, 1.1)


@pytest.mark.parametrize("dims", [2, 3])
def test_sampled_parameters_stay_in_the_default_ranges(dims):
    """Many draws: every parameter inside its range, and the ranges are actually explored (not a tiny subset)."""
    rng = default_ranges(dims)
    s = sampler(dims, seed=0)
    shape = GRID[dims]
    s.randomize(256, shape)
    p = s.params
    n_rot, n_shear = dims * (dims - 1) // 2, dims * (dims - 1)
    assert p.rotate.shape == (256, n_rot) and p.shear.shape == (256, n_shear)
    assert p.scale.shape == p.translate.shape == p.crop_starts.shape == (256, dims)

    def spans(values, lo, hi):
        assert values.min() >= lo - 1e-9 and values.max() <= hi + 1e-9
        assert values.min() < lo + 0.1 * (hi - lo) and values.max() > hi - 0.1 * (hi - lo)

    spans(p.rotate, -math.radians(rng["rotate_deg"]), math.radians(rng["rotate_deg"]))
    spans(p.shear, -math.radians(rng["shear_deg"]), math.radians(rng["shear_deg"]))
    spans(p.scale, *rng["scale_range"])
    for axis, size in enumerate(shape):
        spans(p.translate[:, axis], -rng["translate_frac"] * size, rng["translate_frac"] * size)
        spans(p.crop_starts[:, axis], 0, size - CROP[dims])


@pytest.mark.parametrize("dims", [2, 3])
def test_image_smaller_than_crop_raises(dims):
    s = sampler(dims)
    small = tuple(c - 1 if i == 0 else c + 4 for i, c in enumerate([CROP[dims]] * dims))
    with pytest.raises(ValueError, match="crop"):
        s(torch.zeros(1, 1, *small))
    with pytest.raises(ValueError, match="crop"):
        s.randomize(1, small)
    with pytest.raises(ValueError, match="spatial_dims"):
        CoverViewSampler(spatial_dims=4)


@pytest.mark.parametrize("dims", [2, 3])
def test_identity_when_all_ranges_are_zero(dims):
    """Zero ranges: ``dvf = 0``, mask all ones, ``view_b`` = the crop of the image (and ``view_a`` too, appearance off).
    """
    imgs = smooth_images(2, GRID[dims])
    s = sampler(dims, seed=4, **IDENTITY, **NO_APPEARANCE)
    out = s(imgs)
    crop = Fn.crop(imgs, s.params.crop_starts, (CROP[dims],) * dims)
    assert torch.equal(out["dvf"], torch.zeros_like(out["dvf"]))
    assert torch.equal(out["mask"], torch.ones_like(out["mask"]))
    torch.testing.assert_close(out["view_b"], crop, atol=1e-6, rtol=0)
    torch.testing.assert_close(out["view_a"], crop, atol=1e-6, rtol=0)
    assert (s.params.crop_starts > 0).any()  # a non-trivial crop offset was exercised


@pytest.mark.parametrize("dims", [2, 3])
def test_appearance_changes_only_view_a(dims):
    """Same seed with appearance on / off: ``view_b``, ``dvf``, ``mask`` identical, ``view_a`` changed."""
    imgs = smooth_images(2, GRID[dims])
    on = {"prob_contrast": 1.0, "prob_brightness": 1.0, "prob_blur": 1.0, "prob_noise": 1.0, "prob_blocks": 1.0}
    a = sampler(dims, seed=5, **on)(imgs)
    b = sampler(dims, seed=5, **NO_APPEARANCE)(imgs)
    for key in ("view_b", "dvf", "mask"):
        assert torch.equal(a[key], b[key]), key
    assert (a["view_a"] - b["view_a"]).abs().mean() > 0.01
    # appearance with a neutral draw is the identity
    s = sampler(dims, seed=5, **on)
    s.randomize(2, GRID[dims])
    neutral = s.params
    neutral.contrast, neutral.brightness = np.ones(2), np.zeros(2)
    neutral.blur_sigma, neutral.noise_std, neutral.block_sizes = np.zeros(2), np.zeros(2), neutral.block_sizes * 0
    x = smooth_images(2, [CROP[dims]] * dims)
    torch.testing.assert_close(s.appearance(x, neutral), x)


@pytest.mark.parametrize("dims", [2, 3])
def test_affine_matrices(dims):
    """Rotation part is orthonormal with det 1; zero angles and unit scale give the identity; scale is per axis."""
    b = 4
    n_rot, n_shear = dims * (dims - 1) // 2, dims * (dims - 1)
    eye = torch.eye(dims, dtype=torch.float64).expand(b, dims, dims)
    ident = Fn.affine_matrices(torch.zeros(b, n_rot, dtype=torch.float64), torch.zeros(b, n_shear, dtype=torch.float64),
                               torch.ones(b, dims, dtype=torch.float64))
    torch.testing.assert_close(ident, eye)
    rot = Fn.affine_matrices(torch.rand(b, n_rot, dtype=torch.float64), torch.zeros(b, n_shear, dtype=torch.float64),
                             torch.ones(b, dims, dtype=torch.float64))
    torch.testing.assert_close(rot @ rot.transpose(1, 2), eye)
    torch.testing.assert_close(torch.linalg.det(rot), torch.ones(b, dtype=torch.float64))
    scale = torch.tensor([[0.5, 2.0, 1.5][:dims]], dtype=torch.float64)
    torch.testing.assert_close(Fn.affine_matrices(torch.zeros(1, n_rot, dtype=torch.float64),
                                                  torch.zeros(1, n_shear, dtype=torch.float64), scale),
                               torch.diag_embed(scale))


def test_appearance_primitives():
    """Contrast/brightness about the per-item mean, per-item blur (sigma 0 = unchanged), axis-aligned noise blocks."""
    x = torch.tensor([[[[0.0, 2.0], [4.0, 6.0]]]])  # mean 3
    out = Fn.adjust_contrast_brightness(x, torch.tensor([2.0]), torch.tensor([0.5]))
    torch.testing.assert_close(out, (x - 3) * 2 + 3 + 0.5)

    imgs = torch.randn(2, 1, 9, 9, generator=torch.Generator().manual_seed(0))
    blurred = Fn.gaussian_blur(imgs, torch.tensor([0.0, 1.0]))
    torch.testing.assert_close(blurred[0], imgs[0])
    assert blurred[1].std() < 0.8 * imgs[1].std()
    torch.testing.assert_close(Fn.gaussian_blur(torch.full((1, 1, 6, 5, 4), 2.0), torch.tensor([1.5])),
                               torch.full((1, 1, 6, 5, 4), 2.0))

    mask = Fn.noise_blocks_mask(torch.tensor([[[1, 2], [0, 0]]]), torch.tensor([[[2, 3], [0, 0]]]), (5, 6))
    expected = torch.zeros(1, 1, 5, 6, dtype=torch.bool)
    expected[..., 1:3, 2:5] = True  # the second block has size 0 (absent)
    assert torch.equal(mask, expected)
