"""Pretraining objectives by name, so a bundle switches method with one override (``--method``)."""

from __future__ import annotations

import torch.nn as nn
from monai.utils import look_up_option

from monai_cover.losses.cover import CoverLoss
from monai_cover.losses.pixel_contrast import PixelContrastLoss

__all__ = ["PRETRAIN_METHODS", "pretrain_loss"]

PRETRAIN_METHODS = ("cover", "consistency", "pixel_contrast")


def pretrain_loss(
    method: str = "cover",
    lambda_vec: float = 1.0,
    lambda_con: float = 1.0,
    temperature: float = 0.3,
    num_samples: int = 1024,
) -> nn.Module:
    """The loss of a pretraining ``method``.

    - ``cover``: :class:`CoverLoss` ``(lambda_vec, lambda_con)``, the paper's objective.
    - ``consistency``: the paper's ablation without vector regression, :class:`CoverLoss` ``(0, lambda_con)``.
    - ``pixel_contrast``: the dense binary-contrast baseline, :class:`PixelContrastLoss`.
    """
    method = look_up_option(method, PRETRAIN_METHODS)
    if method == "cover":
        return CoverLoss(lambda_vec, lambda_con)
    if method == "consistency":
        return CoverLoss(0.0, lambda_con)
    return PixelContrastLoss(temperature, num_samples)
