"""A workaround for a PyTorch CPU bug: under bfloat16 autocast, the weight gradient of a 3D convolution whose input
has depth 2 (``(B, C, 2, H, W)``) comes out wrong.

Measured with torch 2.13.0 (CPU build) on an AMD EPYC with AVX512-BF16: for a 3x3x3 ``nn.Conv3d`` every such call
gave a weight gradient of NaN, inf or values of 1e30-1e38 where float32 gives ~80, whatever the channels, the
batch, the other two sizes (1-6 tried) or the thread count; the input gradient is right, and depths 1, 3, 4, 6, 8,
1x1x1 kernels and 2D convolutions are right too. COVER's backbone meets it at its bottleneck whenever a crop is 32
voxels deep (2 after four poolings): this is what made 3D pretraining with ``bf16`` skip steps with an infinite
gradient norm now and then, and it also silently corrupted the bottleneck's updates in the steps it did not skip.
"""

from __future__ import annotations

import torch
import torch.nn as nn

__all__ = ["Depth2SafeConv3d", "avoid_bf16_depth2_conv3d"]


class Depth2SafeConv3d(nn.Conv3d):
    """``nn.Conv3d`` that computes inputs of depth 2 in float32 when CPU bfloat16 autocast is on (output float32;
    the next operations cast it back under autocast). Everything else is ``nn.Conv3d``'s computation."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[2] == 2 and x.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
            with torch.autocast("cpu", enabled=False):
                return super().forward(x.float())
        return super().forward(x)


def avoid_bf16_depth2_conv3d(module: nn.Module) -> int:
    """Turn every ``nn.Conv3d`` of ``module`` into a :class:`Depth2SafeConv3d` in place (same parameters, state
    dict keys and values); returns how many were changed."""
    changed = 0
    for m in module.modules():
        if type(m) is nn.Conv3d:
            m.__class__ = Depth2SafeConv3d
            changed += 1
    return changed
