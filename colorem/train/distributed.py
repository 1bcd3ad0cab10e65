"""The torchrun environment: rank and world size from RANK/WORLD_SIZE/LOCAL_RANK, NCCL on GPUs and gloo
on CPUs. World size 1 (plain `colorem train`) is the same code path with no process group."""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from colorem.device import pick_device


@dataclass
class DistributedEnv:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        """Only global rank 0 writes checkpoints, logs and sample grids."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def setup(device: str = "auto", timeout_s: float = 1800.0) -> DistributedEnv:
    """Read the torchrun environment and join the process group when WORLD_SIZE > 1."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    chosen = pick_device(device, local_rank)
    if chosen.type == "cuda":
        torch.cuda.set_device(chosen)
    if world_size > 1 and not dist.is_initialized():
        backend = "nccl" if chosen.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, timeout=datetime.timedelta(seconds=timeout_s),
                                **({"device_id": chosen} if backend == "nccl" else {}))
    return DistributedEnv(rank, local_rank, world_size, chosen)


def cleanup() -> None:
    """Leave the process group; the barrier keeps a rank from tearing down gloo while a peer still talks."""
    if dist.is_initialized():
        try:
            dist.barrier()
        finally:
            dist.destroy_process_group()


def barrier(env: DistributedEnv) -> None:
    if env.distributed:
        dist.barrier()


def any_rank(env: DistributedEnv, flag: bool) -> bool:
    """True on every rank when `flag` is true on any rank (e.g. a stop signal), so all stop at one step."""
    if not env.distributed:
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=env.device if dist.get_backend() == "nccl" else "cpu")
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def gather_objects(env: DistributedEnv, value: Any) -> list[Any]:
    """Every rank's `value`, in rank order (picklable plain data only)."""
    if not env.distributed:
        return [value]
    values: list[Any] = [None] * env.world_size
    dist.all_gather_object(values, value)
    return values


def broadcast_object(env: DistributedEnv, value: Any) -> Any:
    """Rank 0's `value` on every rank."""
    if not env.distributed:
        return value
    holder = [value]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]


def mean_across_ranks(env: DistributedEnv, value: float) -> float:
    if not env.distributed:
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=env.device if dist.get_backend() == "nccl" else "cpu")
    dist.all_reduce(tensor)
    return float(tensor.item()) / env.world_size
