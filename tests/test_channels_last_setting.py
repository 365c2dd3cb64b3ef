"""The ``channels_last`` setting of cover_pretrain: ``auto`` (the default) is on only for 3D networks on a CPU without
bfloat16 instructions (where ``bf16`` auto is not on)."""

from __future__ import annotations

import pytest
import torch
from monai.bundle import ConfigParser

from monai_cover.capabilities import resolve_channels_last
from monai_cover.errors import BadSettingError
from tests.bundles.conftest import REPO


@pytest.fixture
def avx2_cpu(monkeypatch):
    """A CPU without bfloat16 instructions, whatever this machine has."""
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    return monkeypatch


@pytest.mark.parametrize("device, dims, expected", [("cpu", 3, True), ("cpu", 2, False), ("cuda:0", 3, False),
                                                    ("cuda", 2, False)])
def test_auto_is_on_for_3d_networks_on_a_cpu(avx2_cpu, device, dims, expected):
    assert resolve_channels_last("auto", device, dims) is expected


def test_auto_is_off_on_a_cpu_with_bfloat16_instructions(avx2_cpu):
    """There channels-last was no faster in float32 and slower with bf16 (which auto turns on there)."""
    avx2_cpu.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True, raising=False)
    assert resolve_channels_last("auto", "cpu", 3) is False
    assert resolve_channels_last(True, "cpu", 3) is True


def test_explicit_values_win_and_text_is_refused():
    assert resolve_channels_last(False, "cpu", 3) is False and resolve_channels_last(True, "cuda", 2) is True
    with pytest.raises(BadSettingError, match=r"--channels_last 'false': auto, True or False"):
        resolve_channels_last("false", "cpu", 3)


@pytest.mark.parametrize("overrides, expected", [({}, False), ({"spatial_dims": 3}, True),
                                                 ({"spatial_dims": 3, "slicewise": True}, False),
                                                 ({"spatial_dims": 3, "channels_last": False}, False)])
def test_the_bundle_default_reaches_the_step(avx2_cpu, overrides, expected):
    """A 3D network on the CPU trains channels-last by default; 2D and slice-wise (2D networks) do not."""
    parser = ConfigParser()
    parser.read_config(str(REPO / "bundles" / "cover_pretrain" / "configs" / "train.json"))
    parser.update({"device": "$torch.device('cpu')", **overrides})
    assert parser.get_parsed_content("train#iteration").channels_last is expected
