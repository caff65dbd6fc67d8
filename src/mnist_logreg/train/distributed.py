"""Data-parallel training: which process this is among those torchrun started, and their collective calls.

``torchrun --nproc-per-node N -m mnist_logreg train ...`` starts N copies of the command, each
with RANK, LOCAL_RANK and WORLD_SIZE in its environment. Every copy reads the same data and
draws the same shuffled global batches (same seed); each trains on its shard of every batch,
and the gradients are averaged across the copies with torch.distributed (gloo on the CPU, nccl
on GPUs) before every step, so all copies take the same step and hold the same weights. Only
rank 0 speaks and writes.

Without torchrun (or with one process) nothing here starts anything: ``current()`` is SINGLE.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch
import torch.distributed as dist

from ..torchrun import SINGLE, Processes, launched

__all__ = ["SINGLE", "Processes", "average_", "current", "each_machine_first", "launched", "start", "stop", "sum_"]


def current() -> Processes:
    """The process group this process has joined, or SINGLE when it trains alone."""
    if not (dist.is_available() and dist.is_initialized()):
        return SINGLE
    return Processes(dist.get_rank(), int(os.environ.get("LOCAL_RANK", 0)), dist.get_world_size())


def start(device: torch.device) -> Processes:
    """Join the group torchrun set up: nccl for GPUs (one per process, by local rank), gloo on the CPU."""
    processes = launched()
    if not processes.parallel or dist.is_initialized():
        return current()
    if device.type == "cuda":
        torch.cuda.set_device(processes.local_rank)  # "cuda" now means this process's own GPU
        dist.init_process_group("nccl")
    else:
        dist.init_process_group("gloo")
    return current()


def stop() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def average_(tensor: torch.Tensor) -> torch.Tensor:
    """Replace ``tensor`` by its mean over the processes, in place: how DDP averages gradients."""
    dist.all_reduce(tensor)
    return tensor.div_(dist.get_world_size())


def sum_(tensor: torch.Tensor) -> torch.Tensor:
    """Replace ``tensor`` by its sum over the processes, in place."""
    dist.all_reduce(tensor)
    return tensor


@contextlib.contextmanager
def each_machine_first() -> Iterator[None]:
    """Run the body in each machine's local rank 0 first, then in the other processes.

    For work that writes a shared local folder once (fetching the data): the others wait, then
    find it done.
    """
    processes = current()
    if processes.parallel and processes.local_rank != 0:
        dist.barrier()
    yield
    if processes.parallel and processes.local_rank == 0:
        dist.barrier()
