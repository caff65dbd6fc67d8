"""One of the processes torchrun starts for test_distributed.py: train on small fake data, data-parallel.

    torchrun --standalone --nproc-per-node N tests/data_parallel_worker.py OUT_DIR

Each process trains the same model twice through ``fit``, on its shard of every batch: with the
closed-form step's all-reduce, and through DistributedDataParallel; it saves its weights and
history as OUT_DIR/<step>-rank<R>.pt. Then the processes run the whole pipeline, ``train_run``,
into OUT_DIR/run-memory and OUT_DIR/run-dataloader (the two loaders), fetching the fake dataset
from OUT_DIR/source into OUT_DIR/data.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from mnist_logreg.data.fetch import from_folder
from mnist_logreg.train import distributed
from mnist_logreg.train.run import train_run
from tests.helpers import DATA_PARALLEL_CONFIG, fake_spec, fit_fake_digits, read_fake_files


def main(out: Path) -> None:
    processes = distributed.start(torch.device("cpu"))
    for step, closed_form in (("closed-form", True), ("ddp", False)):
        model, history = fit_fake_digits(closed_form, processes.rank, processes.world_size)
        torch.save({"model": model.state_dict(), "history": history}, out / f"{step}-rank{processes.rank}.pt")

    spec = fake_spec(read_fake_files(out / "source"), sources=[from_folder(out / "source")])
    for loader in ("memory", "dataloader"):
        run_dir = out / f"run-{loader}"
        train_run(spec, DATA_PARALLEL_CONFIG, data_dir=out / "data", run_dir=run_dir, device="cpu", loader=loader)
    distributed.stop()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
