"""Segmentation network built on the COVER backbone; its backbone keys equal the pretrained ones."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn

from monai_cover.networks.nets.backbone import CoverUNet

__all__ = ["CoverSegNet"]


class CoverSegNet(nn.Module):
    """Backbone + 1x1 convolution head on the finest decoder level.

    ``state_dict`` keys are ``backbone.<CoverUNet key>`` and ``head.*``, so a pretrained backbone loads with
    :func:`monai_cover.weights.load_backbone` without renaming.

    Args:
        spatial_dims: 2 or 3.
        in_channels: image channels.
        out_channels: number of classes (logits, background included).
        channels, decoder_channels: backbone widths; must match the pretrained backbone.
        init: backbone initialisation, ``"default"`` or ``"kaiming"`` (see :class:`CoverUNet`); only matters when
            no pretrained weights are loaded. The head keeps PyTorch's default initialisation.

    Forward: ``(B, in_channels, *S) -> (B, out_channels, *S)`` logits.
    """

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 1,
        out_channels: int = 2,
        channels: Sequence[int] = (32, 64, 128, 256, 512),
        decoder_channels: Sequence[int] = (256, 128, 64, 32),
        init: str = "default",
    ) -> None:
        super().__init__()
        self.backbone = CoverUNet(spatial_dims, in_channels, channels, decoder_channels, init=init)
        conv = nn.Conv2d if spatial_dims == 2 else nn.Conv3d
        self.head = conv(self.backbone.out_channels[0], out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x)[0])
