"""Multi-process training with torch.distributed, set up from torchrun's environment.

torchrun sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT in each process;
`init_distributed()` reads them, picks NCCL on CUDA and gloo on the CPU, and binds each process
to GPU LOCAL_RANK. Without those variables (a plain `python` run) it returns a single-process
`DistInfo` and touches nothing. Only rank 0 logs and writes checkpoints; every rank joins the
barriers around a checkpoint so that none runs ahead while rank 0 writes, or reads a half-written
file.
"""
from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn as nn
from torch.utils.data import Dataset, DistributedSampler


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    initialized_here: bool = False  # this module started the process group (and should end it)

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _pick_device(device: str, local_rank: int) -> torch.device:
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError("device='cuda' but torch.cuda.is_available() is False")
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    return torch.device(device)


def init_distributed(device: str = "auto", *, timeout_s: float = 1800.0) -> DistInfo:
    """Join the process group torchrun describes (or use the one already initialised)."""
    if dist.is_available() and dist.is_initialized():
        rank, world = dist.get_rank(), dist.get_world_size()
        local_rank = int(os.environ.get("LOCAL_RANK", rank))
        dev = _pick_device(device, local_rank)
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        return DistInfo(rank, world, local_rank, dev, initialized_here=False)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo(device=_pick_device(device, 0))
    missing = [v for v in ("RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT") if v not in os.environ]
    if missing:
        raise RuntimeError(f"WORLD_SIZE={world} but {', '.join(missing)} not set; launch with torchrun")
    rank, local_rank = int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"])
    dev = _pick_device(device, local_rank)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    backend = "nccl" if dev.type == "cuda" else "gloo"
    kwargs = {"device_id": dev} if backend == "nccl" else {}
    dist.init_process_group(backend=backend, init_method="env://", rank=rank, world_size=world,
                            timeout=datetime.timedelta(seconds=timeout_s), **kwargs)
    return DistInfo(rank, world, local_rank, dev, initialized_here=True)


def shutdown(info: DistInfo) -> None:
    """End the process group if `init_distributed` started it."""
    if info.initialized_here and dist.is_initialized():
        dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    if info.distributed:
        if info.device.type == "cuda":
            dist.barrier(device_ids=[info.device.index])
        else:
            dist.barrier()


def all_reduce_mean(value: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """The mean of `value` over all ranks (a copy; `value` itself is unchanged)."""
    value = value.detach().clone()
    if info.distributed:
        dist.all_reduce(value, op=dist.ReduceOp.SUM)
        value /= info.world_size
    return value


def broadcast_buffers(model: nn.Module, info: DistInfo) -> None:
    """Copy rank 0's buffers (BatchNorm running statistics) to every rank.

    DDP broadcasts them before each forward, so after the last step of an epoch each rank still
    holds the statistics of its own last batch; this makes the ranks identical again."""
    if info.distributed:
        for buffer in model.buffers():
            dist.broadcast(buffer.data, src=0)


def gather_objects(obj, info: DistInfo) -> list:
    """`obj` from every rank, in rank order (a list of one without a process group)."""
    if not info.distributed:
        return [obj]
    out = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def convert_sync_bn(model: nn.Module, which: bool | str) -> nn.Module:
    """BatchNorm -> SyncBatchNorm in the whole model (`which` True) or in `model.backbone` only ("backbone":
    HRFormer's training syncs its backbone's statistics and keeps the head's per GPU)."""
    if which == "backbone":
        model.backbone = nn.SyncBatchNorm.convert_sync_batchnorm(model.backbone)
        return model
    return nn.SyncBatchNorm.convert_sync_batchnorm(model) if which else model


def prepare_model(model: nn.Module, info: DistInfo, *, sync_bn: bool | str = False,
                  channels_last: bool = False) -> nn.Module:
    """Move to the device (channels-last if asked), convert BatchNorm to SyncBatchNorm (if asked and
    distributed: `convert_sync_bn`), and wrap in DistributedDataParallel when there is more than one process.
    Returns the module to call; the plain model stays reachable as `.module`."""
    if sync_bn and info.distributed:
        if info.device.type != "cuda":
            raise ValueError("sync_bn needs CUDA devices (torch's SyncBatchNorm runs only on GPUs); "
                             "set sync_bn to false for a CPU run")
        model = convert_sync_bn(model, sync_bn)
    model = model.to(info.device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    if not info.distributed:
        return model
    device_ids = [info.device.index] if info.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=device_ids,
                                               output_device=device_ids[0] if device_ids else None)


def build_sampler(dataset: Dataset, info: DistInfo, *, shuffle: bool = True, seed: int = 0,
                  drop_last: bool = False) -> DistributedSampler:
    """A DistributedSampler for any number of processes (one included): the shuffle order is a
    function of (seed, epoch) only, so call `set_epoch(epoch)` before each epoch and resuming
    replays the same order."""
    return DistributedSampler(dataset, num_replicas=info.world_size, rank=info.rank, shuffle=shuffle,
                              seed=seed, drop_last=drop_last)
