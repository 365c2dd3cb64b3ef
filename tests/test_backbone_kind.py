"""A backbone of another kind than the network (2D vs 3D, other image channels) stops in one line that says so, even
with --pretrained_strict False (which across 2D/3D would have loaded only biases and norms); a partial load warns."""

import logging

import pytest

from monai_cover.errors import WeightsError
from monai_cover.networks import CoverUNet
from monai_cover.weights import load_backbone, save_backbone

WIDTHS = {"channels": [4, 8, 8, 16, 16], "decoder_channels": [16, 8, 8, 8]}


def _saved(tmp_path, dims, in_channels=1, **widths):
    net = CoverUNet(dims, in_channels, **{**WIDTHS, **widths})
    save_backbone(tmp_path, net, {"spatial_dims": dims, "in_channels": in_channels})
    return tmp_path / "model.pt"


@pytest.mark.parametrize("strict", [True, False])
def test_a_2d_backbone_for_a_3d_network_names_slicewise(tmp_path, strict):
    path = _saved(tmp_path, 2)
    with pytest.raises(WeightsError) as err:
        load_backbone(CoverUNet(3, 1, **WIDTHS), path, strict=strict)
    assert str(err.value).startswith(f"{path}: a 2D backbone cannot initialise a 3D network (")
    assert str(err.value).endswith("pretrain in 3D, or fine-tune a 2D backbone slice by slice (--slicewise True).")
    assert "--channels" not in str(err.value) and "\n" not in str(err.value)


def test_a_3d_backbone_for_a_2d_network(tmp_path):
    with pytest.raises(WeightsError, match=r"a 3D backbone cannot initialise a 2D network \(.*\); pretrain in 2D\.$"):
        load_backbone(CoverUNet(2, 1, **WIDTHS), _saved(tmp_path, 3), strict=False)


def test_an_rgb_backbone_for_gray_images_names_the_color_setting(tmp_path):
    with pytest.raises(WeightsError, match=r"the backbone reads 3 image channel\(s\) and the network 1 .*--color rgb"):
        load_backbone(CoverUNet(2, 1, **WIDTHS), _saved(tmp_path, 2, in_channels=3), strict=False)


def test_a_gray_backbone_still_initialises_several_channels(tmp_path):
    """One channel spread over several (a backbone pretrained one modality at a time) is not another kind."""
    assert load_backbone(CoverUNet(2, 3, **WIDTHS), _saved(tmp_path, 2)).ok


def test_a_partial_load_warns_and_a_full_one_informs(tmp_path, caplog):
    path = _saved(tmp_path, 2, decoder_channels=[16, 8, 8, 4])
    with caplog.at_level(logging.INFO, logger="monai_cover"):
        rep = load_backbone(CoverUNet(2, 1, **WIDTHS), path, strict=False)
    assert not rep.ok and [r.levelname for r in caplog.records if "tensors" in r.getMessage()] == ["WARNING"]
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="monai_cover"):
        assert load_backbone(CoverUNet(2, 1, **{**WIDTHS, "decoder_channels": [16, 8, 8, 4]}), path).ok
    assert [r.levelname for r in caplog.records if "tensors" in r.getMessage()] == ["INFO"]
