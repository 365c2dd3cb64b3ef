"""Pretraining objectives by name, so a bundle switches method with one override (``--method``); the fine-tuning
loss of cover_seg."""

from __future__ import annotations

from typing import Any

import torch.nn as nn
from monai.losses import DiceCELoss
from monai.utils import look_up_option

from monai_cover.losses.cover import CoverLoss
from monai_cover.losses.pixel_contrast import PixelContrastLoss
from monai_cover.losses.temporal import TemporalCoverLoss

__all__ = ["PRETRAIN_METHODS", "pretrain_loss", "seg_loss"]

PRETRAIN_METHODS = ("cover", "consistency", "pixel_contrast")


def pretrain_loss(
    method: str = "cover",
    lambda_vec: float = 1.0,
    lambda_con: float = 1.0,
    temperature: float = 0.3,
    num_samples: int = 1024,
    temporal: bool = False,
    lambda_smooth: float = 0.0,
    lambda_trans: float = 0.0,
) -> nn.Module:
    """The loss of a pretraining ``method``.

    - ``cover``: :class:`CoverLoss` ``(lambda_vec, lambda_con)``, the paper's objective.
    - ``consistency``: the paper's ablation without vector regression, :class:`CoverLoss` ``(0, lambda_con)``.
    - ``pixel_contrast``: the dense binary-contrast baseline, :class:`PixelContrastLoss`.

    ``temporal``: the views include pairs of two frames of a sequence (``cover`` only):
    :class:`TemporalCoverLoss` ``(lambda_vec, lambda_con, lambda_smooth=..., lambda_trans=...)`` (bending-energy and
    transitivity weights of the two-frame pairs; ignored otherwise).
    """
    method = look_up_option(method, PRETRAIN_METHODS)
    if temporal and method != "cover":
        raise ValueError(f"pretrain_loss: pairs of two frames need method 'cover', got {method!r}.")
    if method == "cover":
        if temporal:
            return TemporalCoverLoss(lambda_vec, lambda_con, lambda_smooth=lambda_smooth, lambda_trans=lambda_trans)
        return CoverLoss(lambda_vec, lambda_con)
    if method == "consistency":
        return CoverLoss(0.0, lambda_con)
    return PixelContrastLoss(temperature, num_samples)


def seg_loss(multilabel: bool = False, **options: Any) -> DiceCELoss:
    """cover_seg's loss: Dice + cross-entropy, over classes (softmax, the label one-hot encoded) or, with
    ``multilabel``, over overlapping structures (a sigmoid per channel). ``options``:
    :class:`~monai.losses.DiceCELoss`'s (e.g. ``lambda_dice``, ``lambda_ce``; one the rule sets, given, wins)."""
    return DiceCELoss(**{"to_onehot_y": not multilabel, "softmax": not multilabel, "sigmoid": multilabel, **options})
