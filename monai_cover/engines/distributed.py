"""The multi-GPU configs' process group: one process per GPU under ``torchrun`` (NCCL), or per CPU process (Gloo, so
the same config runs, and is tested, without GPUs)."""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel

__all__ = ["distributed_network", "end_distributed", "local_device", "rank_seed", "start_distributed"]


def local_device() -> torch.device:
    """This process's device under ``torchrun``: the GPU of its ``LOCAL_RANK``, or the CPU without CUDA."""
    return torch.device(f"cuda:{os.environ['LOCAL_RANK']}" if torch.cuda.is_available() else "cpu")


def start_distributed(device: torch.device) -> bool:
    """Join the process group (NCCL with CUDA, else Gloo; once), keep expected failures to one line per process, and
    make ``device`` this process's GPU. Returns ``True``."""
    from monai_cover.errors import install_one_line_errors

    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    # joining the group replaces the interpreter's error hook with PyTorch's rank-prefixing one, which swallowed the
    # one-line report of an expected failure: ours goes back on top (other errors still reach PyTorch's)
    install_one_line_errors()
    if torch.cuda.is_available():
        torch.cuda.set_device(device)
    return True


def rank_seed(seed: int) -> int:
    """The seed of this process's random draws that must differ across processes (e.g. the views): ``seed`` plus
    its rank, so each process draws its own and a rerun the same."""
    return seed + dist.get_rank()


def distributed_network(module: nn.Module, device: torch.device) -> DistributedDataParallel:
    """``module`` on ``device``, its gradients averaged across the processes (on its GPU with CUDA)."""
    return DistributedDataParallel(module.to(device), device_ids=[device] if torch.cuda.is_available() else None)


def end_distributed() -> bool:
    """Wait for every process, then leave the process group (if one was joined). Returns ``True``."""
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
    return True
