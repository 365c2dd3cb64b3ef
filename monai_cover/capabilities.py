"""What this machine can do, for the settings whose ``auto`` depends on it: bfloat16 and channels-last speed on the
training device, and optional packages (highdicom for DICOM SEG)."""

from __future__ import annotations

import logging
from typing import Any

import torch

from monai_cover.errors import BadSettingError

__all__ = ["fast_bf16", "resolve_bf16", "resolve_channels_last", "resolve_dicom_seg"]

logger = logging.getLogger(__name__)


def fast_bf16(device: torch.device | str) -> bool:
    """Whether bfloat16 autocast speeds training up on ``device``: a CUDA GPU that supports it, or a CPU with
    AVX512-BF16 or AMX instructions. Elsewhere bf16 is emulated and slower than float32."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
        try:  # private probes of torch.cpu; a torch without them counts as "not fast"
            return any(getattr(torch.cpu, name, lambda: False)() for name in probes)
        except Exception:
            return False
    return False


def _auto_flag(name: str, value: Any, auto: str) -> str | bool:
    """``"auto"``, ``True`` or ``False`` from a setting's value (``None``/0/1 as flags); :class:`BadSettingError`
    naming the setting otherwise (``auto`` says what auto does)."""
    if value == "auto":
        return "auto"
    if value is None or isinstance(value, bool) or (isinstance(value, int) and value in (0, 1)):
        return bool(value)
    raise BadSettingError(f"--{name} {value!r}: auto, True or False (auto: {auto})")


def resolve_channels_last(value: Any, device: torch.device | str, spatial_dims: int) -> bool:
    """The ``channels_last`` setting as a flag: ``"auto"`` turns the channels-last memory format on for 3D networks
    on a CPU without bfloat16 instructions, the one place ``benchmarks/step.py`` measured it faster (its table in
    ``benchmarks/README.md``); ``True``/``False`` force it. Other values raise :class:`BadSettingError`."""
    flag = _auto_flag("channels_last", value, "on for 3D networks on a CPU without bfloat16 instructions")
    if flag != "auto":
        return flag
    return torch.device(device).type == "cpu" and int(spatial_dims) == 3 and not fast_bf16(device)


def resolve_bf16(value: Any, device: torch.device | str) -> bool:
    """The ``bf16`` setting as a flag: ``"auto"`` (the bundle default) turns bfloat16 autocast on for a CPU where
    :func:`fast_bf16` holds (logged), where ``benchmarks/step.py`` measured it faster than float32 and it learned as
    float32 did (``benchmarks/README.md``); on CUDA it leaves float16 AMP, the bundle's CUDA default, in place.
    ``True``/``False`` force it (``True`` on CUDA replaces float16 AMP). Other values raise
    :class:`BadSettingError`."""
    flag = _auto_flag("bf16", value, "on for CPUs with bfloat16 instructions; float16 AMP stays on CUDA")
    if flag != "auto":
        return flag
    on = torch.device(device).type == "cpu" and fast_bf16(device)
    if on:
        logger.info(f"bf16 auto: bfloat16 autocast on {torch.device(device)} (this CPU has bfloat16 instructions; "
                    "the loss stays float32; --bf16 False trains in float32)")
    return on


def _has_highdicom() -> bool:
    from monai.utils import optional_import

    return optional_import("highdicom")[1]


def resolve_dicom_seg(value: Any) -> bool:
    """The ``dicom_seg`` setting of inference: whether :class:`~monai_cover.transforms.SaveDicomSegd` is in the chain
    (it writes a DICOM SEG beside the NIfTI of each DICOM input, and nothing for other inputs).

    ``"auto"`` (the default) and ``True``: yes; with ``"auto"`` and no ``highdicom`` installed, DICOM inputs get NIfTI
    and one log line saying how to add the SEG, with ``True`` that is a :class:`BadSettingError`. ``False``: NIfTI
    only.
    """
    flag = _auto_flag("dicom_seg", value, "a DICOM SEG beside the NIfTI of DICOM inputs when highdicom is installed")
    if flag is True and not _has_highdicom():
        raise BadSettingError("--dicom_seg True: needs highdicom (pip install 'monai-cover[dicom]'), or run with "
                              "--dicom_seg False for NIfTI only")
    return flag is not False
