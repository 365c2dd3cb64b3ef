"""The ``channels_last`` setting of cover_pretrain: ``auto`` (the default) is on only for 3D networks on a CPU."""

from __future__ import annotations

import pytest
from monai.bundle import ConfigParser

from monai_cover.settings import BadSettingError, resolve_channels_last
from tests.bundles.conftest import REPO


@pytest.mark.parametrize("device, dims, expected", [("cpu", 3, True), ("cpu", 2, False), ("cuda:0", 3, False),
                                                    ("cuda", 2, False)])
def test_auto_is_on_for_3d_networks_on_a_cpu(device, dims, expected):
    assert resolve_channels_last("auto", device, dims) is expected


def test_explicit_values_win_and_text_is_refused():
    assert resolve_channels_last(False, "cpu", 3) is False and resolve_channels_last(True, "cuda", 2) is True
    with pytest.raises(BadSettingError, match=r"--channels_last 'false': auto, True or False"):
        resolve_channels_last("false", "cpu", 3)


@pytest.mark.parametrize("overrides, expected", [({}, False), ({"spatial_dims": 3}, True),
                                                 ({"spatial_dims": 3, "slicewise": True}, False),
                                                 ({"spatial_dims": 3, "channels_last": False}, False)])
def test_the_bundle_default_reaches_the_step(overrides, expected):
    """A 3D network on the CPU trains channels-last by default; 2D and slice-wise (2D networks) do not."""
    parser = ConfigParser()
    parser.read_config(str(REPO / "bundles" / "cover_pretrain" / "configs" / "train.json"))
    parser.update({"device": "$torch.device('cpu')", **overrides})
    assert parser.get_parsed_content("train#iteration").channels_last is expected
