"""``CoverViewSampler`` from its parts (``ViewGeometry``, ``ViewAppearance``, ``ViewPairs``) draws exactly what the
flat sampler before them drew, and each part works alone.

``sampler_views_reference.npz`` holds the draws and views of the flat constructor for seeded cases; it was written
by ``tests/transforms/make_sampler_views_reference.py`` at commit 591fa87 (``git show 591fa87:tests/transforms/
make_sampler_views_reference.py``), before the sampler had parts. ``CASES`` below builds the same cases with the parts.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from monai_cover.transforms import (
    APPEARANCE_PRESETS,
    CoverViewSampler,
    RandCoverViews,
    ViewAppearance,
    ViewGeometry,
    ViewPairs,
    ViewParams,
)

REFERENCE = Path(__file__).with_name("sampler_views_reference.npz")
G2, G3 = {"spatial_dims": 2, "crop_size": 16}, {"spatial_dims": 3, "crop_size": 8}
MILD = {"preset": "mild"}

# name -> (geometry, appearance, pairs); the grid, channels and seeds are in the file's manifest
CASES = {
    "2d_reference": (G2, "reference", None),
    "2d_mild_uniform": ({**G2, "rotation_sampling": "uniform"}, "mild", None),
    "2d_mild_reference_rotation": (G2, "mild", None),
    "2d_reference_uniform": ({**G2, "rotation_sampling": "uniform"}, "reference", None),
    "3d_reference": (G3, "reference", None),
    "3d_mild_uniform": ({**G3, "rotation_sampling": "uniform"}, "mild", None),
    "2d_elastic_mild": ({**G2, "elastic_magnitude": 2.0, "elastic_spacing": 8}, "mild", None),
    "2d_elastic_reference": ({**G2, "elastic_magnitude": 1.5, "elastic_spacing": 6}, "reference", None),
    "3d_elastic_reference": ({**G3, "elastic_magnitude": 1.0, "elastic_spacing": 4}, "reference", None),
    "2d_rgb_jitter": (G2, {"color_jitter": 0.1}, None),
    "2d_rgb_jitter_mild": (G2, {**MILD, "color_jitter": 0.2}, None),
    "2d_cross_modal": (G2, "reference", {"cross_modal": 0.5}),
    "2d_synthetic": (G2, "reference", {"synthetic_contrast": 0.5}),
    "2d_cross_synthetic": (G2, "reference", {"cross_modal": 0.5, "synthetic_contrast": 0.5}),
    "2d_temporal": (G2, "reference", {"temporal_gap": 2}),
    "2d_temporal_synthetic": (G2, "reference", {"temporal_gap": 2, "temporal_share": 0.7, "synthetic_contrast": 0.5}),
    "3d_per_axis": ({**G3, "rotate_deg": [15.0, 0.0, 0.0], "translate_frac": [0.1, 0.1, 0.0],
                     "shear_deg": [10.0, 0.0, 10.0, 0.0, 0.0, 0.0], "scale_range": [0.9, 1.1]}, "reference", None),
    "3d_slab_crop": ({"spatial_dims": 3, "crop_size": [8, 8, 4], "rotate_deg": [15.0, 0.0, 0.0]}, "reference", None),
    "2d_reference_overrides": (G2, {"overrides": {"prob_blur": 1.0, "blur_sigma": [0.5, 1.0],
                                                  "contrast_range": [0.8, 1.2], "noise_std": 0.1, "max_blocks": 4,
                                                  "block_frac": [0.1, 0.3]}}, None),
    "2d_mild_overrides": (G2, {**MILD, "overrides": {"prob_contrast": 1.0, "prob_brightness": 0.0, "brightness": 0.3,
                                                     "prob_noise": 1.0, "prob_blocks": 1.0, "max_blocks": 5}}, None),
    "3d_no_inpainting": (G3, {"inpainting": False}, None),
    "2d_mild_no_inpainting": (G2, {**MILD, "inpainting": False, "overrides": {"prob_blocks": 1.0}}, None),
    "2d_ranges": ({**G2, "rotate_deg": 20.0, "scale_range": [0.8, 1.2], "shear_deg": 4.0, "translate_frac": 0.05},
                  "reference", None),
}


@pytest.fixture(scope="module")
def reference():
    z = np.load(REFERENCE)
    return z, json.loads(str(z["manifest"]))


def unpack(z, manifest, key: str) -> dict[str, np.ndarray]:
    """The values of one packed array (the generator's ``pack``): name -> array of its original shape and dtype."""
    flat, out, at = z[key], {}, 0
    for name, shape, dtype in manifest["layout"][key]:
        n = int(np.prod(shape))
        out[name] = flat[at:at + n].reshape(shape).astype(dtype)
        at += n
    assert at == len(flat)
    return out


def images(grid, channels: int, seed: int) -> torch.Tensor:
    return torch.from_numpy(np.random.RandomState(seed).rand(2, channels, *grid).astype(np.float32))


def test_the_reference_file_covers_every_case(reference):
    _, manifest = reference
    assert set(manifest["cases"]) == set(CASES)
    assert REFERENCE.stat().st_size < 300_000


@pytest.mark.parametrize("name", sorted(CASES))
def test_parts_draw_and_generate_what_the_flat_sampler_did(name, reference):
    """Two consecutive seeded draws: every array of the draw exactly equal, every view allclose (atol 1e-6)."""
    z, manifest = reference
    case = manifest["cases"][name]
    geometry, appearance, pairs = CASES[name]
    sampler = CoverViewSampler(geometry, appearance, pairs, seed=case["seed"])
    x = images(case["grid"], case["channels"], case["image_seed"])
    for draw in range(2):
        key = f"{name}/{draw}"
        out = sampler(x)
        p = sampler.params
        assert p.preset == manifest["preset"][key]
        for field in manifest["none"][key]:
            assert getattr(p, field) is None, field
        want = unpack(z, manifest, f"{key}/params")
        assert len(want) + len(manifest["none"][key]) == 20  # every field of the draw but the preset
        for field, value in want.items():
            got = np.asarray(getattr(p, field))
            assert got.shape == value.shape and got.dtype == value.dtype, field
            np.testing.assert_array_equal(got, value, err_msg=field)
        if f"{key}/out" not in manifest["layout"]:
            continue
        views = unpack(z, manifest, f"{key}/out")
        assert set(out) == set(views)
        for k, v in views.items():
            got = out[k].numpy()
            assert got.shape == v.shape, k
            np.testing.assert_allclose(got, v.astype(got.dtype), atol=1e-6, rtol=0, err_msg=k)


def test_the_array_transform_draws_what_it_did(reference):
    z, manifest = reference
    case = manifest["array_transform"]
    t = RandCoverViews(case["kwargs"]).set_random_state(case["seed"])
    img = images((24, 24), 1, case["image_seed"])[0]
    for draw in range(2):
        views = unpack(z, manifest, f"array_transform/{draw}/out")
        for k, got in zip(("view_a", "view_b", "ddf", "mask"), t(img)):
            np.testing.assert_allclose(got.numpy(), views[k], atol=1e-6, rtol=0, err_msg=k)


def test_config_round_trips_and_is_plain_json():
    sampler = CoverViewSampler(
        ViewGeometry(3, [8, 8, 4], rotate_deg=[15.0, 0.0, 0.0], elastic_magnitude=1.0),
        ViewAppearance("mild", {"noise_std": 0.1}, color_jitter=0.1), ViewPairs(synthetic_contrast=0.5), seed=3)
    config = sampler.config
    assert set(config) == {"geometry", "appearance", "pairs"}
    assert config["appearance"] == {"preset": "mild", "overrides": {"noise_std": 0.1}, "inpainting": True,
                                    "color_jitter": 0.1}
    assert config["pairs"] == {"cross_modal": None, "synthetic_contrast": 0.5, "temporal_gap": 0,
                               "temporal_share": 0.5}
    assert json.loads(json.dumps(config)) == config  # plain JSON: no objects or tuples inside
    again = CoverViewSampler(**json.loads(json.dumps(config)), seed=3)
    assert again.config == config
    x = images((12, 12, 6), 1, 0)
    a, b = sampler(x), again(x)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    # the config is a copy: changing it changes no sampler
    config["geometry"]["crop_size"] = 99
    assert sampler.config["geometry"]["crop_size"] == [8, 8, 4]


def test_parts_as_objects_mappings_or_a_preset_name_are_one_sampler():
    x = images((24, 24), 1, 5)
    built = [
        CoverViewSampler({"spatial_dims": 2, "crop_size": 16}, seed=1),
        CoverViewSampler(ViewGeometry(2, 16), "reference", None, seed=1),
        CoverViewSampler(ViewGeometry(2, 16), {"preset": "reference"}, {}, seed=1),
        CoverViewSampler(ViewGeometry(2, 16), ViewAppearance(), ViewPairs(), seed=1),
    ]
    outs = [s(x) for s in built]
    for out in outs[1:]:
        for k in out:
            assert torch.equal(out[k], outs[0][k]), k
    with pytest.raises(ValueError, match=r"geometry has no argument 'rotate'; ViewGeometry takes spatial_dims"):
        CoverViewSampler({"spatial_dims": 2, "rotate": 10})
    with pytest.raises(TypeError, match="pairs takes a ViewPairs or a mapping"):
        CoverViewSampler({"spatial_dims": 2}, pairs=0.5)


def test_unknown_appearance_override_names_it_and_the_known_ones():
    with pytest.raises(ValueError) as err:
        ViewAppearance("reference", {"noise": 0.1, "prob_blur": 1.0})
    line = str(err.value)
    assert "\n" not in line and "'noise'" in line and "'prob_blur'" not in line.split(";")[0]
    assert all(name in line for name in APPEARANCE_PRESETS["reference"])
    # a None value keeps the preset's
    assert ViewAppearance("mild", {"noise_std": None}).noise_std == APPEARANCE_PRESETS["mild"]["noise_std"]
    assert ViewAppearance("mild", {"noise_std": 0.3}).values == {**APPEARANCE_PRESETS["mild"], "noise_std": 0.3}


def test_set_random_state_reaches_every_part():
    """The parts draw from the sampler's one generator: seeding the sampler seeds them, and a generator handed over
    directly (as ``RandCoverViews`` does) is the one they draw from at the next ``randomize``."""
    s = CoverViewSampler({"spatial_dims": 2, "crop_size": 16}, pairs={"synthetic_contrast": 0.5})
    s.set_random_state(4)
    assert s.view_geometry.R is s.R and s.view_appearance.R is s.R and s.view_pairs.R is s.R
    s.randomize(2, (24, 24))
    first = s.params
    s.R = np.random.RandomState(4)
    s.randomize(2, (24, 24))
    assert s.view_pairs.R is s.R
    np.testing.assert_array_equal(s.params.remap_knots, first.remap_knots)
    np.testing.assert_array_equal(s.params.rotate, first.rotate)


def test_each_part_works_alone():
    """The geometry's draw and field, the appearance's draw and changes, the pairs' draw and sources, each without
    a sampler, give what the sampler gives for the same generator state when the others draw nothing."""
    x = images((24, 24), 2, 7)
    geometry = ViewGeometry(2, 16, elastic_magnitude=1.0, elastic_spacing=8).set_random_state(2)
    p = geometry.randomize(2, (24, 24))
    assert p.contrast is None and p.cross is None and p.rotate.shape == (2, 1) and p.elastic.shape[:2] == (2, 2)
    ddf = geometry.crop(geometry.field(p, (24, 24)), p)
    assert ddf.shape == (2, 2, 16, 16)
    # in a sampler whose appearance draws nothing before the geometry ("reference"): the same field
    sampler = CoverViewSampler(geometry, pairs=None, seed=2)
    sampler.randomize(2, (24, 24))
    torch.testing.assert_close(sampler.generate(x)["ddf"], ddf)

    look = ViewAppearance("reference", {"prob_blocks": 0.0}).set_random_state(0)
    d = look.randomize(2, (16, 16))
    assert d.rotate is None and d.contrast.shape == (2,) and (d.block_sizes == 0).all() and d.preset == "reference"
    crop = x[:, :1, :16, :16]
    y = look(crop, d)
    mean = crop.mean((1, 2, 3), keepdim=True)
    noisy = crop + torch.randn(crop.shape, generator=torch.Generator().manual_seed(d.seed)) * torch.as_tensor(
        d.noise_std, dtype=torch.float32).view(-1, 1, 1, 1)
    m = noisy.mean((1, 2, 3), keepdim=True)
    expected = (noisy - m) * torch.as_tensor(d.contrast, dtype=torch.float32).view(-1, 1, 1, 1) + m + torch.as_tensor(
        d.brightness, dtype=torch.float32).view(-1, 1, 1, 1)
    torch.testing.assert_close(y, expected, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(mean, y.mean((1, 2, 3), keepdim=True))  # it did change

    pairs = ViewPairs(cross_modal=1.0).set_random_state(0)
    q = pairs.randomize(2)
    assert q.cross.all() and q.crop_starts is None and q.pair_kinds().tolist() == [1, 1]
    a, b, frames = pairs.sources(x, q)
    assert a.shape == b.shape == (2, 1, 24, 24) and frames is None
    assert all(not torch.equal(a[i], b[i]) for i in range(2))  # two different channels each
    assert ViewPairs().randomize(3) == ViewParams()  # nothing drawn with every option off
    with pytest.raises(ValueError, match="no array"):
        ViewParams().pair_kinds()


def test_forced_kinds_and_with_pairs():
    s = CoverViewSampler({"spatial_dims": 2, "crop_size": 16}, pairs={"cross_modal": 0.5}, seed=0)
    s.randomize(4, (24, 24))
    assert s.forced("cross").pair_kinds().tolist() == [1] * 4
    np.testing.assert_array_equal(s.forced("same").rotate, s.params.rotate)
    with pytest.raises(ValueError, match="synthetic_contrast > 0"):
        s.forced("synthetic")
    both = s.with_pairs(synthetic_contrast=1.0)
    assert both.config["pairs"] == {**s.config["pairs"], "synthetic_contrast": 1.0}
    assert both.config["geometry"] == s.config["geometry"] and s.view_pairs.synthetic_contrast == 0.0
    both.set_random_state(0)
    both.randomize(4, (24, 24))
    # the pair draws come last: the same geometry and appearance, and now synthetic pairs too
    for field in ("rotate", "crop_starts", "contrast", "block_starts", "seed", "modality", "cross"):
        np.testing.assert_array_equal(getattr(both.params, field), getattr(s.params, field), err_msg=field)
    assert both.forced("synthetic").pair_kinds().tolist() == [2] * 4
    with pytest.raises(TypeError):
        s.with_pairs(synthetic=1.0)


def test_parts_validate_their_arguments():
    with pytest.raises(ValueError, match="spatial_dims"):
        ViewGeometry(4)
    with pytest.raises(ValueError, match="rotate_deg takes one value or 3"):
        ViewGeometry(3, 8, rotate_deg=[10.0, 0.0])
    with pytest.raises(ValueError, match="uniform.*reference|reference.*uniform"):
        ViewGeometry(2, rotation_sampling="triangular")
    with pytest.raises(ValueError, match="mild.*reference|reference.*mild"):
        ViewAppearance("authors")
    with pytest.raises(ValueError, match="cross_modal"):
        ViewPairs(cross_modal=1.5)
    with pytest.raises(ValueError, match="use one"):
        ViewPairs(cross_modal=0.5, temporal_gap=2)
    with pytest.raises(ValueError, match="crop"):
        ViewGeometry(2, 16).randomize(1, (15, 40))
    assert ViewGeometry(2, 16).crop(torch.zeros(1, 1, 20, 20), ViewParams(crop_starts=np.array([[1, 2]]))).shape == (
        1, 1, 16, 16)
