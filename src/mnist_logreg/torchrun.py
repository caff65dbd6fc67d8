"""Which process this is among those torchrun started, read from its environment (RANK,
LOCAL_RANK, WORLD_SIZE) without importing torch: the command line asks before torch is loaded,
to let one process alone report a bad flag. train/distributed.py joins the processes' group.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Processes:
    """This process's place among the training processes."""

    rank: int = 0  # across every machine; rank 0 prints and writes the run folder
    local_rank: int = 0  # on this machine; it picks the GPU, and local rank 0 fetches the data
    world_size: int = 1

    @property
    def parallel(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


SINGLE = Processes()


def launched() -> Processes:
    """What torchrun's environment variables say this process is (SINGLE outside torchrun)."""
    try:
        return Processes(int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"]), int(os.environ["WORLD_SIZE"]))
    except (KeyError, ValueError):
        return SINGLE
