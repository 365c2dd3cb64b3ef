"""Dense feature extractor: a (pretrained) backbone that returns one pyramid level."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn

from monai_cover.networks.nets.backbone import CoverUNet

__all__ = ["CoverFeatureNet"]


class CoverFeatureNet(nn.Module):
    """``(B, C, *S) -> (B, F, *S_level)`` features of one backbone level (``level=0``: finest, full resolution).

    Keys are ``backbone.*`` like :class:`CoverSegNet`, so the same pretrained file loads into both.
    """

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 1,
        channels: Sequence[int] = (32, 64, 128, 256, 512),
        decoder_channels: Sequence[int] = (256, 128, 64, 32),
        level: int = 0,
    ) -> None:
        super().__init__()
        self.backbone = CoverUNet(spatial_dims, in_channels, channels, decoder_channels)
        self.level = level

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)[self.level]
