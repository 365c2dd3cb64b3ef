from monai_cover.engines.distributed import (
    distributed_network,
    end_distributed,
    local_device,
    rank_seed,
    start_distributed,
)
from monai_cover.engines.pretrain_step import CoverPretrainStep
from monai_cover.engines.schedules import pretrain_lr_schedule, seg_lr_schedule

__all__ = [
    "CoverPretrainStep", "distributed_network", "end_distributed", "local_device", "pretrain_lr_schedule",
    "rank_seed", "seg_lr_schedule", "start_distributed",
]
