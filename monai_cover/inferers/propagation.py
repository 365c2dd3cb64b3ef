"""Label propagation through a sequence with predicted (or known) displacement fields (issue 17).

A label of frame 0 is carried to every later frame by warping its class probabilities with the field between
consecutive frames, ``x_{t+1}(p) = x_t(p + psi_t(p))`` (the backward-warp convention of the views:
``psi_t`` maps positions of frame ``t + 1`` to positions of frame ``t``). Probabilities rather than hard labels are
carried, so sub-voxel motion does not round away frame after frame; each frame's label is their argmax.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F

from monai_cover.networks.blocks.warp import warp

__all__ = ["propagate_labels"]


def propagate_labels(label: torch.Tensor, fields: Iterable[torch.Tensor], num_classes: int) -> list[torch.Tensor]:
    """Carry ``label`` (frame 0) through the sequence frame by frame.

    Args:
        label: ``(1, *S)`` integer class map of frame 0 (values in ``range(num_classes)``).
        fields: ``psi_0, psi_1, ...``, each ``(d, *S)`` in voxels: frame ``t + 1`` at ``p`` shows frame ``t`` at
            ``p + psi_t(p)``.
        num_classes: number of classes, background (0) included.

    Returns:
        ``[label_0, label_1, ...]``, each ``(1, *S)`` int64 (``label_0`` is ``label``); positions whose source falls
        outside the grid become background.
    """
    lab = label.long()
    if lab.ndim < 3 or lab.shape[0] != 1:
        raise ValueError(f"propagate_labels: label must be (1, *S), got {tuple(label.shape)}.")
    probs = F.one_hot(lab[0], num_classes).movedim(-1, 0)[None].float()  # (1, K, *S)
    out = [lab]
    for psi in fields:
        if psi.shape[1:] != lab.shape[1:] or psi.shape[0] != lab.ndim - 1:
            raise ValueError(f"propagate_labels: field {tuple(psi.shape)} does not fit label {tuple(lab.shape)}.")
        probs = warp(probs, psi[None].to(probs))
        out.append(probs[0].argmax(0, keepdim=True))
    return out
