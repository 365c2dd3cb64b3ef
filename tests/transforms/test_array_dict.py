"""MONAI transform wrappers of SeVR: ``RandCoverViews`` (array) and ``RandCoverViewsd`` (dictionary).

They are what a MONAI data pipeline / bundle uses, so they must seed like MONAI transforms, accept numpy arrays and
MetaTensors, and behave inside ``Compose``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from monai.transforms import Compose, Lambdad

from monai_cover.transforms import RandCoverViews, RandCoverViewsD, RandCoverViewsd, RandCoverViewsDict, ViewGeometry
from monai_cover.transforms import functional as Fn

GRID = {2: (40, 36), 3: (20, 18, 22)}
CROP = {2: 32, 3: 16}
OUT_KEYS = ("view_a", "view_b", "ddf", "mask")


def image(dims: int, channels: int = 1, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((channels, *GRID[dims])).astype(np.float32)


@pytest.mark.parametrize("dims", [2, 3])
def test_array_transform_shapes(dims):
    t = RandCoverViews({"spatial_dims": dims, "crop_size": CROP[dims]}).set_random_state(0)
    view_a, view_b, ddf, mask = t(torch.as_tensor(image(dims, channels=2)))
    crop = (CROP[dims],) * dims
    assert view_a.shape == view_b.shape == (2, *crop)
    assert ddf.shape == (dims, *crop) and mask.shape == (1, *crop)
    assert torch.equal(mask, Fn.valid_mask(ddf[None])[0])
    assert ddf.abs().max() > 0


def test_array_transform_rejects_wrong_rank():
    t = RandCoverViews({"spatial_dims": 3, "crop_size": 8})
    with pytest.raises(ValueError, match="channel-first"):
        t(torch.zeros(10, 10, 10))  # no channel axis


@pytest.mark.parametrize("dims", [2, 3])
def test_array_transform_seeding(dims):
    """``set_random_state`` makes the views reproducible; other seeds and consecutive calls differ."""
    img = torch.as_tensor(image(dims))
    a = RandCoverViews({"spatial_dims": dims, "crop_size": CROP[dims]}).set_random_state(1)(img)
    b = RandCoverViews({"spatial_dims": dims, "crop_size": CROP[dims]}).set_random_state(1)(img)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    c = RandCoverViews({"spatial_dims": dims, "crop_size": CROP[dims]}).set_random_state(2)(img)
    assert not torch.equal(a[2], c[2])
    t = RandCoverViews({"spatial_dims": dims, "crop_size": CROP[dims]}).set_random_state(1)
    first, second = t(img), t(img)
    assert torch.equal(first[2], a[2]) and not torch.equal(first[2], second[2])
    # randomize=False re-applies the previous draw
    again = t(img, randomize=False)
    assert all(torch.equal(x, y) for x, y in zip(second, again))


def test_numpy_and_metatensor_inputs_give_the_same_views():
    """numpy, torch and MetaTensor inputs, same seed -> identical plain-tensor outputs."""
    arr = image(2)
    outs = []
    for img in (arr, torch.as_tensor(arr), MetaTensor(torch.as_tensor(arr), meta={"filename_or_obj": "x.png"})):
        outs.append(RandCoverViews({"spatial_dims": 2, "crop_size": 32}).set_random_state(3)(img))
    for out in outs[1:]:
        assert all(torch.equal(x, y) for x, y in zip(outs[0], out))
    assert all(isinstance(x, torch.Tensor) and x.dtype == torch.float32 for x in outs[2])


@pytest.mark.parametrize("dims", [2, 3])
def test_dict_transform_keys_and_shapes(dims):
    t = RandCoverViewsd("image", {"spatial_dims": dims, "crop_size": CROP[dims]}).set_random_state(0)
    out = t({"image": image(dims), "label": 3})
    assert set(out) == {"image", "label", *OUT_KEYS}
    assert out["label"] == 3 and out["image"].shape == (1, *GRID[dims])  # other keys untouched
    crop = (CROP[dims],) * dims
    assert out["view_a"].shape == out["view_b"].shape == out["mask"].shape == (1, *crop)
    assert out["ddf"].shape == (dims, *crop)


def test_dict_transform_custom_output_keys_and_aliases():
    t = RandCoverViewsd("img", {"spatial_dims": 2, "crop_size": 32}, view_a_key="a", view_b_key="b", ddf_key="ddf",
                        mask_key="eps")
    out = t({"img": image(2)})
    assert set(out) == {"img", "a", "b", "ddf", "eps"}
    assert RandCoverViewsD is RandCoverViewsd and RandCoverViewsDict is RandCoverViewsd


def test_dict_transform_missing_keys():
    data = {"other": 1}
    t = RandCoverViewsd("image", {"spatial_dims": 2, "crop_size": 32}, allow_missing_keys=True)
    assert t(data) == data
    with pytest.raises(KeyError):
        RandCoverViewsd("image", {"spatial_dims": 2, "crop_size": 32})(data)


def test_dict_transform_needs_exactly_one_key():
    with pytest.raises(ValueError, match="one image key"):
        RandCoverViewsd(["image", "image2"], {"spatial_dims": 2, "crop_size": 32})


def test_dict_transform_seeding_matches_array_transform():
    """Same seed: the dictionary transform produces exactly the array transform's views; other seeds differ."""
    arr = image(2)
    a = RandCoverViewsd("image", {"spatial_dims": 2, "crop_size": 32}).set_random_state(5)({"image": arr})
    b = RandCoverViewsd("image", {"spatial_dims": 2, "crop_size": 32}).set_random_state(5)({"image": arr})
    ref = RandCoverViews({"spatial_dims": 2, "crop_size": 32}).set_random_state(5)(arr)
    for key, value in zip(OUT_KEYS, ref):
        assert torch.equal(a[key], b[key]) and torch.equal(a[key], value)
    c = RandCoverViewsd("image", {"spatial_dims": 2, "crop_size": 32}).set_random_state(6)({"image": arr})
    assert not torch.equal(a["ddf"], c["ddf"])


def test_inside_compose():
    """Works as a step of ``monai.transforms.Compose``; ``Compose.set_random_state`` makes the pipeline reproducible."""

    def pipeline(seed):
        return Compose([
            Lambdad("image", lambda x: x * 2.0),
            RandCoverViewsd("image", {"spatial_dims": 3, "crop_size": CROP[3]}, {"overrides": {"prob_noise": 0.0}}),
        ]).set_random_state(seed)

    data = {"image": image(3)}
    a, b, c = pipeline(0)(data), pipeline(0)(data), pipeline(1)(data)
    assert set(OUT_KEYS) <= set(a)
    assert all(torch.equal(a[k], b[k]) for k in OUT_KEYS)
    assert not torch.equal(a["ddf"], c["ddf"])
    # order of the steps: with an identity transform and image size = crop size, view_b is exactly 2 * image
    identity = Compose([
        Lambdad("image", lambda x: x * 2.0),
        RandCoverViewsd("image", ViewGeometry(3, CROP[3], rotate_deg=0.0, scale_range=(1.0, 1.0), shear_deg=0.0,
                                              translate_frac=0.0)),
    ]).set_random_state(0)
    small = np.random.default_rng(1).standard_normal((1, *[CROP[3]] * 3)).astype(np.float32)
    out = identity({"image": small})
    torch.testing.assert_close(out["view_b"], torch.as_tensor(2 * small), atol=1e-5, rtol=0)
