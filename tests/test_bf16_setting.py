"""The ``bf16`` setting of cover_pretrain: ``auto`` (the default) picks bfloat16 autocast on CPUs with bfloat16
instructions, where it is faster; CUDA keeps float16 AMP."""

from __future__ import annotations

import pytest
import torch
from monai.bundle import ConfigParser

from monai_cover.capabilities import fast_bf16, resolve_bf16
from monai_cover.errors import BadSettingError
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


def test_auto_on_cuda_leaves_float16_amp(monkeypatch):
    """On CUDA float16 AMP is the bundle's default and was faster than bf16 in 2D on an H200: auto keeps it."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert fast_bf16("cuda:0") is True
    assert resolve_bf16("auto", "cuda:0") is False
    assert resolve_bf16(True, "cuda:0") is True


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
def test_the_bundle_default_follows_the_cpu(monkeypatch, fast):
    """cover_pretrain: bfloat16 by default on a CPU with bfloat16 instructions, float32 elsewhere; ``--bf16 False``
    forces float32."""
    _cpu_probes(monkeypatch, fast, False)
    parser = ConfigParser()
    parser.read_config(str(REPO / "bundles" / "cover_pretrain" / "configs" / "train.json"))
    parser.update({"device": "$torch.device('cpu')"})
    assert parser.get_parsed_content("train#iteration").bf16 is fast
    parser.update({"bf16": False})
    assert parser.get_parsed_content("train#iteration").bf16 is False
