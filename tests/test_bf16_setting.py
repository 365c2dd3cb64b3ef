"""The ``bf16`` setting of cover_pretrain: ``auto`` picks bfloat16 autocast only where the device is faster with it."""

from __future__ import annotations

import pytest
import torch
from monai.bundle import ConfigParser

from monai_cover.settings import BadSettingError, fast_bf16, resolve_bf16
from tests.bundles.conftest import REPO


def _cpu_probes(monkeypatch, avx512_bf16: bool, amx: bool) -> None:
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx, raising=False)


@pytest.mark.parametrize("avx512_bf16, amx, expected",
                         [(True, False, True), (False, True, True), (False, False, False)])
def test_auto_follows_the_cpu_instructions(monkeypatch, avx512_bf16, amx, expected):
    _cpu_probes(monkeypatch, avx512_bf16, amx)
    assert fast_bf16("cpu") is expected
    assert resolve_bf16("auto", torch.device("cpu")) is expected


def test_auto_on_cuda_follows_the_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    for supported in (True, False):
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, s=supported, **k: s)
        assert resolve_bf16("auto", "cuda:0") is supported


def test_a_broken_probe_means_float32(monkeypatch):
    def broken():
        raise RuntimeError("cpuinfo failed")

    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", broken, raising=False)
    assert resolve_bf16("auto", "cpu") is False


def test_explicit_values_win_and_text_is_refused(monkeypatch):
    _cpu_probes(monkeypatch, True, True)
    assert resolve_bf16(False, "cpu") is False and resolve_bf16(True, "cpu") is True
    with pytest.raises(BadSettingError, match=r"--bf16 'false': auto, True or False"):
        resolve_bf16("false", "cpu")


@pytest.mark.parametrize("fast", [True, False])
def test_the_bundle_setting_reaches_the_step(monkeypatch, fast):
    """cover_pretrain: float32 by default; ``--bf16 auto`` becomes the step's flag for the training device."""
    _cpu_probes(monkeypatch, fast, False)
    parser = ConfigParser()
    parser.read_config(str(REPO / "bundles" / "cover_pretrain" / "configs" / "train.json"))
    parser.update({"device": "$torch.device('cpu')"})
    assert parser.get_parsed_content("train#iteration").bf16 is False
    parser.update({"bf16": "auto"})
    assert parser.get_parsed_content("train#iteration").bf16 is fast
