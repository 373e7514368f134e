"""Data-parallel training through torch.distributed, started by ``torchrun``.

Every process holds a full copy of the networks and a slice of the global batch; after
each backward pass the gradients are averaged over processes (one all-reduce of the
flattened gradients, which also works for the double-backward regularisers), so the
weights stay identical everywhere. Only rank 0 writes files.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class Dist:
    """This process's place in the job: ``rank`` of ``world_size``, on ``device``."""

    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_writer(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1


def init_from_env(device: torch.device) -> Dist:
    """Join the process group torchrun describes (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_*):
    NCCL on CUDA, gloo on the CPU. A plain ``python`` run is a world of one."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist(0, 1, device)
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return Dist(rank, world, device)


def average_gradients(module: nn.Module, d: Dist) -> None:
    """Mean of each parameter's gradient over all processes (missing gradients count as 0);
    non-finite values become finite, as fp16 overflow must not poison the weights."""
    params = [p for p in module.parameters() if p.requires_grad]
    if not params:
        return
    flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).flatten() for p in params])
    if d.active:
        dist.all_reduce(flat)
        flat /= d.world_size
    torch.nan_to_num(flat, nan=0, posinf=1e5, neginf=-1e5, out=flat)
    for p, g in zip(params, flat.split([p.numel() for p in params])):
        p.grad = g.reshape(p.shape)


def mean_tensor(x: torch.Tensor, d: Dist) -> torch.Tensor:
    """Mean of ``x`` over processes (``x`` itself in a world of one)."""
    if not d.active:
        return x
    y = x.detach().clone()
    dist.all_reduce(y)
    return y / d.world_size


def gather_tensor(x: torch.Tensor, d: Dist) -> torch.Tensor:
    """Every rank's ``x`` (same shape everywhere) concatenated along dim 0, in rank order."""
    if not d.active:
        return x
    parts = [torch.empty_like(x) for _ in range(d.world_size)]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts)


def sync_module(module: nn.Module, d: Dist, average_buffers: bool = False) -> None:
    """Rank 0's parameters to everyone; buffers (e.g. the tracked w average, which each
    rank updates from its own batch) averaged when ``average_buffers``, else broadcast."""
    if not d.active:
        return
    with torch.no_grad():
        if not average_buffers:
            for t in list(module.parameters()) + list(module.buffers()):
                dist.broadcast(t.data, src=0)
            return
        for b in module.buffers():
            if b.is_floating_point():
                b.copy_(mean_tensor(b, d))


def gather_objects(obj, d: Dist) -> list:
    """Every rank's ``obj`` (picklable), in rank order."""
    if not d.active:
        return [obj]
    out = [None] * d.world_size
    dist.all_gather_object(out, obj)
    return out


def barrier(d: Dist) -> None:
    if d.active:
        dist.barrier()


def shutdown(d: Dist) -> None:
    if d.active and dist.is_initialized():
        dist.destroy_process_group()
