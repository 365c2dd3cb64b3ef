"""Segmentation network built on the COVER backbone; its backbone keys equal the pretrained ones."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from monai_cover.networks.nets.backbone import CoverUNet

__all__ = ["CoverSegNet"]


class CoverSegNet(nn.Module):
    """Backbone + 1x1 convolution head on the finest decoder level (or on several levels, ``head_levels``).

    ``state_dict`` keys are ``backbone.<CoverUNet key>`` and ``head.*``, so a pretrained backbone loads with
    :func:`monai_cover.weights.load_backbone` without renaming.

    Args:
        spatial_dims: 2 or 3.
        in_channels: image channels.
        out_channels: number of classes (logits, background included).
        channels, decoder_channels: backbone widths; must match the pretrained backbone.
        init: backbone initialisation, ``"default"`` or ``"kaiming"`` (see :class:`CoverUNet`); only matters when
            no pretrained weights are loaded. The head keeps PyTorch's default initialisation.
        head_levels: backbone levels the head sees (finest = 0). ``None``: the finest level (the standard U-Net
            head). A list: a 1x1 convolution on those levels linearly upsampled to the input grid and concatenated,
            e.g. a linear probe of every level of a frozen backbone. Computed exactly but cheaply: each level's slice
            of the head runs at the level's own resolution and only the ``out_channels`` maps are upsampled
            (convolution and linear upsampling commute).
        freeze_backbone: ``requires_grad=False`` on the backbone: an optimiser over the parameters that require
            gradients trains the head only, autograd keeps no backbone activations, and loaded weights stay exactly
            as loaded (a "linear probe").

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
        head_levels: Sequence[int] | None = None,
        freeze_backbone: bool = False,
    ) -> None:
        super().__init__()
        self.backbone = CoverUNet(spatial_dims, in_channels, channels, decoder_channels, init=init)
        if freeze_backbone:  # at construction, so DistributedDataParallel never expects backbone gradients
            self.backbone.requires_grad_(False)
        #: levels the head sees (``None`` is ``[0]``: the same 1x1 convolution on the finest level)
        self.head_levels = [0] if head_levels is None else list(head_levels)
        width = self.backbone.out_channels
        in_head = sum(width[i] for i in self.head_levels)
        conv = nn.Conv2d if spatial_dims == 2 else nn.Conv3d
        self.head = conv(in_head, out_channels, 1)
        self.spatial_dims = spatial_dims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        levels = self.backbone(x)
        mode = "bilinear" if self.spatial_dims == 2 else "trilinear"
        bias = self.head.bias
        assert bias is not None  # for TorchScript: the head is built with a bias
        out = bias.view([1, -1] + [1] * self.spatial_dims)
        start = 0
        for i in self.head_levels:
            width = levels[i].shape[1]
            weight = self.head.weight[:, start : start + width]
            y = F.conv2d(levels[i], weight) if self.spatial_dims == 2 else F.conv3d(levels[i], weight)
            if y.shape[2:] != x.shape[2:]:
                y = F.interpolate(y, size=x.shape[2:], mode=mode, align_corners=False)
            out = out + y
            start += width
        return out
