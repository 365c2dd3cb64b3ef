"""The learning-rate schedules of the bundles: MONAI's warm-up + cosine schedule over a run's steps."""

from __future__ import annotations

from typing import Any

from monai.optimizers import WarmupCosineSchedule
from torch.optim import Optimizer

__all__ = ["pretrain_lr_schedule", "seg_lr_schedule"]


def pretrain_lr_schedule(optimizer: Optimizer, dataloader: Any, epochs: int, warmup_iterations: int, **options: Any
                         ) -> WarmupCosineSchedule:
    """cover_pretrain's schedule over its ``epochs * len(dataloader)`` steps: a linear warm-up of
    ``warmup_iterations``, but at most a tenth of the run (at least one step), then cosine decay. ``options``:
    :class:`~monai.optimizers.WarmupCosineSchedule`'s (``warmup_steps`` or ``t_total`` given win over the rule)."""
    total = epochs * len(dataloader)
    return WarmupCosineSchedule(optimizer, **{"warmup_steps": min(warmup_iterations, max(1, total // 10)),
                                              "t_total": total, **options})


def seg_lr_schedule(optimizer: Optimizer, dataloader: Any, epochs: int, warmup_iterations: int, **options: Any
                    ) -> WarmupCosineSchedule:
    """cover_seg's cosine schedule (``--lr_schedule cosine``) over its ``epochs * len(dataloader)`` steps, after a
    linear warm-up of ``warmup_iterations``. ``options``: :class:`~monai.optimizers.WarmupCosineSchedule`'s
    (``warmup_steps`` or ``t_total`` given win)."""
    return WarmupCosineSchedule(optimizer, **{"warmup_steps": warmup_iterations, "t_total": epochs * len(dataloader),
                                              **options})
