"""Multi-scale U-Net backbone that returns every decoder level, finest first."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from monai.networks.blocks import Convolution
from monai.networks.layers import Pool
from monai.utils import look_up_option
from torch.utils.checkpoint import checkpoint

__all__ = ["CoverUNet", "BACKBONE_INITS"]

#: weight initialisations of :class:`CoverUNet`: PyTorch's default, or the authors' Kaiming normal
BACKBONE_INITS = ("default", "kaiming")


def _num_groups(channels: int, group_size: int) -> int:
    """``channels / group_size`` groups (paper: C/8), lowered to a divisor of ``channels`` for odd widths."""
    g = max(1, channels // group_size)
    while channels % g:
        g -= 1
    return g


def _stage(spatial_dims: int, in_ch: int, out_ch: int, group_size: int, slope: float) -> nn.Sequential:
    """2 x (3^d conv, GroupNorm with ``out_ch / group_size`` groups, LeakyReLU)."""

    def block(i: int, o: int) -> Convolution:
        return Convolution(
            spatial_dims, i, o, kernel_size=3, act=("leakyrelu", {"negative_slope": slope}),
            norm=("group", {"num_groups": _num_groups(o, group_size)}),
        )

    return nn.Sequential(block(in_ch, out_ch), block(out_ch, out_ch))


class CoverUNet(nn.Module):
    """The COVER backbone (paper section "Backbone").

    Encoder stages with max-pool downsampling, decoder stages with linear upsampling + skip concatenation.
    With the default widths this is ~7.9 M parameters in 2D and ~23.5 M in 3D.

    Args:
        spatial_dims: 2 or 3.
        in_channels: image channels.
        channels: encoder widths, finest first; the last one is the bottleneck.
        decoder_channels: decoder widths, coarse to fine; ``len(channels) - 1`` entries.
        group_size: channels per GroupNorm group (paper: C/8 groups -> 8).
        negative_slope: LeakyReLU slope.
        init: ``"default"`` keeps PyTorch's default initialisation; ``"kaiming"`` (the authors' choice) redraws the
            weight of every convolution with ``torch.nn.init.kaiming_normal_`` and its default arguments (fan_in,
            leaky_relu, a=0: std ``sqrt(2 / fan_in)``, ~2.45x the default's), biases untouched, GroupNorm weights 1.
            Recorded in ``config``; irrelevant once pretrained weights are loaded.

    Forward: ``(B, in_channels, *S) -> [f^L (B, dec[-1], *S), ..., f^0 (B, channels[-1], *S/2^L)]``.
    Spatial sizes need not be multiples of ``2^L``: decoder stages resample to their skip's size.

    Setting the attribute ``checkpointing = True`` trades compute for memory while training: each stage keeps only
    its input and recomputes its convolutions in the backward pass (``torch.utils.checkpoint``; same values and
    gradients). A runtime choice, not part of ``config``.
    """

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 1,
        channels: Sequence[int] = (32, 64, 128, 256, 512),
        decoder_channels: Sequence[int] = (256, 128, 64, 32),
        group_size: int = 8,
        negative_slope: float = 0.2,
        init: str = "default",
    ) -> None:
        super().__init__()
        init = look_up_option(init, BACKBONE_INITS)
        #: constructor arguments, saved beside exported weights so the backbone can be rebuilt without this code
        self.config = {
            "spatial_dims": spatial_dims, "in_channels": in_channels, "channels": list(channels),
            "decoder_channels": list(decoder_channels), "group_size": group_size, "negative_slope": negative_slope,
            "init": init,
        }
        if len(decoder_channels) != len(channels) - 1:
            raise ValueError(
                f"CoverUNet: need {len(channels) - 1} decoder widths for {len(channels)} encoder widths, "
                f"got {len(decoder_channels)}."
            )
        self.spatial_dims = spatial_dims
        self.encoders = nn.ModuleList()
        prev = in_channels
        for c in channels:
            self.encoders.append(_stage(spatial_dims, prev, c, group_size, negative_slope))
            prev = c
        self.decoders = nn.ModuleList()
        for skip, c in zip(list(channels[:-1])[::-1], decoder_channels):
            self.decoders.append(_stage(spatial_dims, prev + skip, c, group_size, negative_slope))
            prev = c
        #: channels of the returned levels, finest first
        self.out_channels: list[int] = list(decoder_channels)[::-1] + [channels[-1]]
        # a module, not F.max_pool2d/3d kept as an attribute: TorchScript cannot compile a function attribute
        self.pool = Pool["max", spatial_dims](kernel_size=2)
        self._mode = "bilinear" if spatial_dims == 2 else "trilinear"
        #: activation checkpointing of every stage while training (see the class docstring)
        self.checkpointing = False
        if init == "kaiming":
            for m in self.modules():
                if isinstance(m, (nn.Conv2d, nn.Conv3d)):
                    nn.init.kaiming_normal_(m.weight)
                elif isinstance(m, nn.GroupNorm):
                    nn.init.ones_(m.weight)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        # written for TorchScript too (ckpt_export scripts by default): ModuleLists only under enumerate, no
        # zip over them, no slicing with a step; checkpointing is for training, and is never scripted
        if self.checkpointing and self.training:
            return self._recomputing_forward(x)
        skips: list[torch.Tensor] = []
        for i, enc in enumerate(self.encoders):
            if i > 0:
                x = self.pool(x)
            x = enc(x)
            skips.append(x)
        levels = [x]
        for i, dec in enumerate(self.decoders):
            skip = skips[len(skips) - 2 - i]
            x = F.interpolate(x, size=skip.shape[2:], mode=self._mode, align_corners=False)
            x = dec(torch.cat([x, skip], 1))
            levels.insert(0, x)
        return levels

    @torch.jit.unused
    def _recomputing_forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """``forward`` with every stage run through ``torch.utils.checkpoint``: the same computation, in which each
        stage keeps only its input and recomputes its convolutions in the backward pass."""
        stages = [*self.encoders, *self.decoders]
        try:  # shadow each stage's forward with its checkpointed call for this one forward pass, then unshadow
            for m in stages:
                m.forward = lambda t, _f=m.forward: checkpoint(_f, t, use_reentrant=False)
            self.checkpointing = False
            return self.forward(x)
        finally:
            self.checkpointing = True
            for m in stages:
                m.__dict__.pop("forward", None)

    # TorchScript reads the signature of an unused method without this module's names: real types, not strings
    _recomputing_forward.__annotations__ = {"x": torch.Tensor, "return": list[torch.Tensor]}
