"""One process or many: search and training run alone or under ``torchrun`` with the same code.

torchrun sets RANK, WORLD_SIZE and LOCAL_RANK; with them the process joins a group (gloo on CPU, nccl on CUDA),
takes its share of the batches by rank, and only rank 0 writes files. :meth:`DistContext.average_grads` and
:meth:`DistContext.all_finite` are the collectives the search uses without a DDP wrapper (the architecture,
weight and unrolled steps share one code path); training wraps its network in DDP.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = ["DistContext", "init_distributed", "pick_device"]


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    created_group: bool = False  # this process joined the group here, so it leaves it in shutdown()

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def average_grads(self, params: list[torch.Tensor]) -> None:
        """Replace every gradient by its mean over the processes."""
        if self.distributed:
            for p in params:
                if p.grad is not None:
                    dist.all_reduce(p.grad)
                    p.grad.div_(self.world_size)

    def all_finite(self, values: list[torch.Tensor]) -> bool:
        """Whether every value is finite in every process (all ranks agree, so all stop together)."""
        ok = torch.tensor(float(all(bool(torch.isfinite(v).all()) for v in values)), device=self.device)
        if self.distributed:
            dist.all_reduce(ok, op=dist.ReduceOp.MIN)
        return bool(ok.item() > 0)

    def shutdown(self) -> None:
        if self.created_group and dist.is_initialized():
            dist.destroy_process_group()


def pick_device(device: str | torch.device | None = None, local_rank: int = 0) -> torch.device:
    """``None`` or ``"auto"``: this process's CUDA device when there is one, else the CPU."""
    if device is not None and str(device) != "auto":
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def init_distributed(device: str | torch.device | None = None) -> DistContext:
    """The context of this process; joins the process group when torchrun started several."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = pick_device(device, local_rank)
    if world_size <= 1:
        return DistContext(device=dev)
    created = not dist.is_initialized()
    if created:
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return DistContext(dist.get_rank(), dist.get_world_size(), local_rank, dev, created)
