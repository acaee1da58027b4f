"""Data-parallel training with torch.distributed (``torchrun``): gloo on CPU, nccl on GPU.

Every process builds the same model from the same seed and draws the same global batches
(sampling is seeded by (seed, epoch)); each takes its contiguous share of every global
batch. :class:`~torch.nn.parallel.DistributedDataParallel` averages the main gradients, so
one step equals a single-process step on the global batch up to floating-point summation
order. CLUB's q networks, trained outside the main loss, average their gradients with
:func:`average_gradients`. Every process evaluates validation (identical results, so all
stop at the same epoch); only rank 0 writes files and logs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class DistInfo:
    rank: int
    world_size: int
    local_rank: int
    local_world_size: int


def world() -> DistInfo:
    """This process's place; (0, 1, 0, 1) outside a distributed run."""
    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(),
                        int(os.environ.get("LOCAL_RANK", 0)),
                        int(os.environ.get("LOCAL_WORLD_SIZE", dist.get_world_size())))
    return DistInfo(0, 1, 0, 1)


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_from_env(device: str) -> DistInfo:
    """Join the process group torchrun describes in the environment (once)."""
    if launched_by_torchrun() and not dist.is_initialized():
        use_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
        backend = "nccl" if use_cuda else "gloo"
        if use_cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        dist.init_process_group(backend=backend)
    return world()


def is_main() -> bool:
    return world().rank == 0


def barrier() -> None:
    if world().world_size > 1:
        dist.barrier()


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def shard(batch: tuple[np.ndarray, ...], info: DistInfo) -> tuple[np.ndarray, ...] | None:
    """This rank's contiguous share of a global batch; None when the batch is too small
    for every rank to get a row (every rank then skips it, so all stay in step)."""
    if info.world_size == 1:
        return batch
    n = len(batch[0])
    if n < info.world_size:
        return None
    bounds = np.linspace(0, n, info.world_size + 1).astype(np.int64)
    lo, hi = bounds[info.rank], bounds[info.rank + 1]
    return tuple(a[lo:hi] for a in batch)


def average_gradients(params: list[nn.Parameter]) -> None:
    """All-reduce and average the gradients of parameters trained outside DDP."""
    average_tensors([p.grad for p in params if p.grad is not None])


def average_tensors(tensors: list[torch.Tensor]) -> None:
    """All-reduce and average tensors in place (same shapes, same order on every rank)."""
    info = world()
    if info.world_size == 1:
        return
    for t in tensors:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        t.div_(info.world_size)


def mean_across_ranks(values: dict[str, float]) -> dict[str, float]:
    """The mean of each value over ranks (same keys on every rank), for logging."""
    info = world()
    if info.world_size == 1 or not values:
        return values
    keys = list(values)  # same insertion order on every rank
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return {k: float(v) / info.world_size for k, v in zip(keys, t.tolist(), strict=True)}


class LossModule(nn.Module):
    """DDP wraps ``forward``; a model's training entry point is ``loss``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, *args: Any) -> dict[str, Any]:
        # a plain dict of the LossResult's fields: DDP finds the tensors in what forward
        # returns, and dicts are what it (and torch's pytree) knows for sure
        return self.model.loss(*args).as_dict()  # type: ignore[operator]


def wrap(model: nn.Module, device: torch.device) -> nn.Module:
    """The module whose forward computes the loss: DDP-wrapped in a distributed run."""
    module = LossModule(model)
    if world().world_size == 1:
        return module
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(
        module,
        device_ids=[device.index] if device.type == "cuda" else None,
        # q networks get no gradient from the main loss; feature buffers are identical on
        # every rank, so re-broadcasting them each step would only cost time
        find_unused_parameters=True,
        broadcast_buffers=False,
    )
