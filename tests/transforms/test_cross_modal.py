"""Cross-modal views (channels as co-registered modalities) and synthetic contrast (issue 16).

A cross-modal pair must keep exactly the geometry of the same-modality pair drawn with it (only the source channel
of view b changes), so the displacement target is the same; synthetic contrast remaps view b's intensities through a
random curve and changes nothing else.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from monai_cover.networks.blocks import mixture_of_vectors
from monai_cover.transforms import CoverViewSampler
from monai_cover.transforms import functional as Fn
from tests.networks.test_mov import SHAPES, one_hot_codes, shifted
from tests.transforms.test_sampler import CROP, GRID, IDENTITY, quiet, smooth_images


def geometry(dims: int, **ranges) -> dict:
    return {"spatial_dims": dims, "crop_size": CROP[dims], **ranges}


def test_intensity_remap_identity_inversion_and_knots():
    x = torch.linspace(2.0, 6.0, 9).view(1, 1, 3, 3)
    same = Fn.intensity_remap(x, torch.linspace(0, 1, 6)[None])
    torch.testing.assert_close(same, x)
    inverted = Fn.intensity_remap(x, torch.linspace(1, 0, 6)[None])
    torch.testing.assert_close(inverted, 8.0 - x)  # lo + hi - x
    # a non-monotonic curve hits its knot values at the knots (normalised intensity k / 5)
    knots = torch.tensor([[0.0, 1.0, 0.0, 1.0, 0.0, 1.0]])
    at_knots = torch.tensor([2.0 + 4 * k / 5 for k in range(6)]).view(1, 1, 2, 3)
    torch.testing.assert_close(Fn.intensity_remap(at_knots, knots), 2.0 + 4 * knots.view(1, 1, 2, 3))


@pytest.mark.parametrize("dims", [2, 3])
def test_cross_modal_views_take_one_channel_each_with_the_same_geometry(dims):
    """Channels filled with ``image * (c + 1)``: view a is channel i, view b channel j (j != i for cross pairs),
    warped exactly as the same-modality view b of the same draw."""
    base = smooth_images(4, GRID[dims], seed=2) + 3.0
    imgs = torch.cat([base * (c + 1) for c in range(3)], 1)  # 3 "modalities"
    s = CoverViewSampler(geometry(dims), quiet(), {"cross_modal": 0.5}, seed=5)
    s.randomize(4, GRID[dims])
    same, cross = s.generate(imgs, s.forced("same")), s.generate(imgs, s.forced("cross"))
    assert same["view_a"].shape == (4, 1, *(CROP[dims],) * dims) and same["view_b"].shape == same["view_a"].shape
    assert same["pair"].tolist() == [0] * 4 and cross["pair"].tolist() == [1] * 4
    torch.testing.assert_close(same["ddf"], cross["ddf"])
    torch.testing.assert_close(same["view_a"], cross["view_a"])
    ref = CoverViewSampler(geometry(dims), quiet())
    plain = ref.generate(base, replace(s.params, modality=None, cross=None))  # the same geometry on the base image
    for b in range(4):
        ia = (same["view_a"][b].sum() / Fn.crop(base, s.params.crop_starts, (CROP[dims],) * dims)[b].sum()).round()
        jb = (cross["view_b"][b].sum() / plain["view_b"][b].sum()).round()  # warping is linear: exactly j + 1
        torch.testing.assert_close(same["view_b"][b], plain["view_b"][b] * ia)
        torch.testing.assert_close(cross["view_b"][b], plain["view_b"][b] * jb)
        assert ia != jb and {int(ia), int(jb)} <= {1, 2, 3}
    # the drawn mix: pair kinds follow the share, and every kind is reported per item
    s.randomize(400, GRID[dims])
    assert 0.4 < s.params.cross.mean() < 0.6 and set(s.params.pair_kinds()) == {0, 1}


@pytest.mark.parametrize("dims", [2, 3])
def test_mov_recovers_a_cross_modal_shift_as_a_same_modality_one(dims):
    """Two modalities of one anatomy (one inverted: ``1 - x``) whose features encode position (one-hot, the same
    for both modalities, as a contrast-invariant network would give): MoV recovers the known shift of the cross-modal
    pair exactly as that of the same-modality pair."""
    shape = SHAPES[dims]
    codes = one_hot_codes(shape)
    offset = (1, -1, 1)[:dims]
    query, inside = shifted(codes, offset)
    # the modality is visible in the image but not in the features: any contrast-invariant encoder
    features = {"same": (50 * query, 50 * codes), "cross": (50 * query, 50 * codes)}
    results = {k: mixture_of_vectors(q[None], kk[None], heads=1, radius=2)[0] for k, (q, kk) in features.items()}
    expected = torch.tensor(offset, dtype=torch.float32).view(-1, *([1] * dims)).expand(dims, *shape)
    for v in results.values():
        torch.testing.assert_close(v[:, inside], expected[:, inside], atol=1e-4, rtol=0)
    torch.testing.assert_close(results["same"], results["cross"])


def test_cross_modal_needs_two_channels_and_a_valid_share():
    s = CoverViewSampler(geometry(2), pairs={"cross_modal": 1.0}, seed=0)
    with pytest.raises(ValueError, match="2 or more co-registered channels"):
        s(smooth_images(2, GRID[2]))
    with pytest.raises(ValueError, match="cross_modal must be None or in"):
        CoverViewSampler(geometry(2), pairs={"cross_modal": 1.5})
    with pytest.raises(ValueError, match="need cross_modal set"):
        plain = CoverViewSampler(geometry(2), seed=0)
        plain.randomize(2, GRID[2])
        plain.forced("cross")


@pytest.mark.parametrize("dims", [2, 3])
def test_synthetic_contrast_remaps_view_b_only(dims):
    imgs = smooth_images(6, GRID[dims], seed=3)
    s = CoverViewSampler(geometry(dims), quiet(), {"synthetic_contrast": 0.5}, seed=8)
    out = s(imgs)
    p = s.params
    plain = CoverViewSampler(geometry(dims), quiet()).generate(imgs, s.forced("same"))
    torch.testing.assert_close(out["view_a"], plain["view_a"])
    torch.testing.assert_close(out["ddf"], plain["ddf"])
    remapped = Fn.intensity_remap(plain["view_b"], torch.as_tensor(p.remap_knots, dtype=torch.float32))
    for b in range(6):
        torch.testing.assert_close(out["view_b"][b], (remapped if p.remap[b] else plain["view_b"])[b])
    assert out["pair"].tolist() == [2 if r else 0 for r in p.remap]
    # curves: half monotonic (either way), half not; a large draw shows all three shapes
    s.randomize(400, GRID[dims])
    d = np.diff(s.params.remap_knots, axis=1)
    inc, dec = (d >= 0).all(1), (d <= 0).all(1)
    assert 0.15 < inc.mean() < 0.35 and 0.15 < dec.mean() < 0.35 and (~inc & ~dec).mean() > 0.4
    assert 0.4 < s.params.remap.mean() < 0.6


def test_options_off_draw_and_record_nothing():
    """Without the options, seeded views are exactly those of before (nothing extra drawn) and every pair is a
    same-modality one."""
    imgs = smooth_images(2, GRID[2])
    a = CoverViewSampler(geometry(2), seed=3)
    b = CoverViewSampler(geometry(2), pairs={"synthetic_contrast": 0.0, "cross_modal": None}, seed=3)
    oa, ob = a(imgs), b(imgs)
    for k in ("view_a", "view_b", "ddf"):
        assert torch.equal(oa[k], ob[k])
    assert a.config["pairs"]["synthetic_contrast"] == 0.0 and a.config["pairs"]["cross_modal"] is None
    assert a.params.modality is None and a.params.remap is None and oa["pair"].tolist() == [0, 0]
    on = CoverViewSampler(geometry(2, **IDENTITY), pairs={"synthetic_contrast": 0.3}, seed=3)
    assert on.config["pairs"]["synthetic_contrast"] == 0.3


def test_validation_refuses_pair_kinds_it_cannot_make(tmp_path):
    from monai_cover.errors import BadSettingError
    from monai_cover.handlers import CoverValidation

    plain = CoverViewSampler(geometry(2), seed=0)
    with pytest.raises(BadSettingError, match="'cross' pairs need co-registered modalities"):
        CoverValidation([], plain, tmp_path, pair_kinds=["same", "cross"])
    with pytest.raises(BadSettingError, match="'synth' is not one of same, cross, synthetic"):
        CoverValidation([], plain, tmp_path, pair_kinds=["synth"])
    # synthetic pairs can be asked of any run (how a model copes with contrasts it never saw)
    CoverValidation([], plain, tmp_path, pair_kinds=["same", "synthetic"])
