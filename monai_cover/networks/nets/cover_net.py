"""The COVER pretraining model: backbone + Vector Pyramid Aggregation."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
from monai.utils import look_up_option

from monai_cover.networks.blocks.mov import mixture_of_vectors
from monai_cover.networks.blocks.vpa import VectorPyramidAggregation
from monai_cover.networks.nets.backbone import BACKBONE_INITS, CoverUNet

__all__ = ["CoverNet"]


class CoverNet(nn.Module):
    """``(x_a, x_b) -> (ddf_pred, f_a finest, f_b finest)``.

    Both views go through the backbone as one batch (siamese, GroupNorm is per-sample), or with
    ``separate_views`` as two (the same values). ``ddf_pred`` is in voxels and follows the backward-warp
    convention ``x_b(p) ~ x_a(p + ddf_pred(p))``.

    Args:
        spatial_dims: 2 or 3.
        in_channels: image channels.
        channels, decoder_channels: backbone widths (see :class:`CoverUNet`); ignored when ``backbone`` is given.
        heads: MoV heads per level, coarse to fine.
        head_dim: channels per MoV head.
        radius: MoV window radius ("amp").
        backbone: any module returning a finest-first feature list and exposing ``out_channels`` (finest first).
        vector_fn: MoV similarity-to-vector function (reference implementations in tests/benchmarks).
        init: backbone initialisation, ``"kaiming"`` (default, the authors') or ``"default"`` (PyTorch's; see
            :class:`CoverUNet`); ignored when ``backbone`` is given.
        checkpointing: recompute the backbone's activations in the backward pass (less memory, ~1/3 more
            compute; :class:`CoverUNet`'s ``checkpointing``).
        separate_views: run the backbone on each view in turn instead of both in one batch.
    """

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 1,
        channels: Sequence[int] = (32, 64, 128, 256, 512),
        decoder_channels: Sequence[int] = (256, 128, 64, 32),
        heads: Sequence[int] = (4, 4, 4, 1, 1),
        head_dim: int = 8,
        radius: int = 2,
        backbone: nn.Module | None = None,
        vector_fn=mixture_of_vectors,
        init: str = "kaiming",
        checkpointing: bool = False,
        separate_views: bool = False,
    ) -> None:
        super().__init__()
        init = look_up_option(init, BACKBONE_INITS)
        self.backbone = backbone if backbone is not None else CoverUNet(
            spatial_dims, in_channels, channels, decoder_channels, init=init
        )
        if checkpointing and not hasattr(self.backbone, "checkpointing"):
            raise ValueError("CoverNet: checkpointing needs a backbone with a `checkpointing` switch (CoverUNet).")
        if hasattr(self.backbone, "checkpointing"):
            self.backbone.checkpointing = checkpointing
        self.separate_views = separate_views
        self.vpa = VectorPyramidAggregation(
            spatial_dims, self.backbone.out_channels, heads, head_dim, radius, vector_fn
        )
        #: constructor arguments that rebuild the whole network (the backbone's and the vector heads'), saved with the
        #: exported field model (:func:`~monai_cover.weights.save_field_model`)
        self.config = {**getattr(self.backbone, "config", {}), "heads": list(heads), "head_dim": head_dim,
                       "radius": radius}

    def forward(self, x_a: torch.Tensor, x_b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(B, C, *S), (B, C, *S) -> (B, d, *S) field, (B, F, *S) f_a, (B, F, *S) f_b``."""
        if self.separate_views:
            fa, fb = self.backbone(x_a), self.backbone(x_b)
        else:
            fa, fb = zip(*(f.chunk(2, 0) for f in self.backbone(torch.cat([x_a, x_b], 0))))
        ddf_pred = self.vpa(fa, fb)
        return ddf_pred, fa[0], fb[0]
