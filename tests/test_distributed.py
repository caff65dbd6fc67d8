"""Data-parallel training under torchrun: two CPU processes train the model that one process trains."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from mnist_logreg.data.loaders import ShardedBatches, TensorLoader, shard_batches
from mnist_logreg.model.run_folder import load_run, read_metrics
from mnist_logreg.report.write import write_report
from mnist_logreg.train import distributed
from mnist_logreg.train.run import train_run
from tests.helpers import DATA_PARALLEL_CONFIG, cli, fetched_fake_dataset, fit_fake_digits, torchrun, write_fake_files


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    """data_parallel_worker.py run by torchrun in two processes: (its output folder, the finished process)."""
    out = tmp_path_factory.mktemp("data-parallel")
    write_fake_files(out / "source")
    finished = torchrun(Path(__file__).parent / "data_parallel_worker.py", out, cwd=out)
    assert finished.returncode == 0, finished.stderr[-3000:]
    return out, finished


def saved(out: Path, step: str, rank: int) -> dict:
    return torch.load(out / f"{step}-rank{rank}.pt", weights_only=True)


@pytest.mark.parametrize("step", ["closed-form", "ddp"])
def test_every_process_ends_with_the_same_weights_and_history(two_processes, step):
    out, _ = two_processes
    first, second = saved(out, step, 0), saved(out, step, 1)
    for name in first["model"]:
        assert torch.equal(first["model"][name], second["model"][name]), name
    for mine, theirs in zip(first["history"], second["history"], strict=True):
        assert {k: v for k, v in mine.items() if k != "seconds"} == {k: v for k, v in theirs.items() if k != "seconds"}


def test_the_closed_form_all_reduce_gives_distributed_data_parallels_result(two_processes):
    out, _ = two_processes
    closed, ddp = saved(out, "closed-form", 0), saved(out, "ddp", 0)
    for name in closed["model"]:
        torch.testing.assert_close(closed["model"][name], ddp["model"][name], rtol=0, atol=1e-6)
    # The losses agree as closely as weights 1e-6 apart allow: to a millionth of their size, and, once
    # the fake digits are learnt and a loss is near 2e-4, to float32's rounding of it (2e-9 was seen).
    for ours, theirs in zip(closed["history"], ddp["history"], strict=True):
        assert ours["train_loss"] == pytest.approx(theirs["train_loss"], rel=1e-6, abs=1e-8)
        assert ours["val_loss"] == pytest.approx(theirs["val_loss"], rel=1e-6, abs=1e-8)
    # Batches of 45 split 23 + 22: DDP's mean of the shards' mean gradients is not the batch's
    # mean, so one process on whole batches ends measurably elsewhere; the all-reduce is DDP's.
    alone, _ = fit_fake_digits()  # one process, whole batches
    assert (alone.linear.weight - closed["model"]["linear.weight"]).abs().max() > 1e-4


@pytest.mark.parametrize("loader", ["memory", "dataloader"])
def test_the_pipeline_in_two_processes_trains_what_one_process_trains(two_processes, tmp_path, loader):
    out, _finished = two_processes
    run = out / f"run-{loader}"
    spec, data_dir = fetched_fake_dataset(tmp_path)  # the same fake files the worker fetched
    alone = train_run(spec, DATA_PARALLEL_CONFIG, data_dir=data_dir, run_dir=tmp_path / "run", verbose=False)
    together, info = load_run(run)
    assert (info.world_size, alone.info.world_size) == (2, 1)
    assert not (run / "resume.pt").exists()  # finished: rank 0 removed its checkpoint
    # Batches of 48 split evenly, so two processes take one process's steps, up to rounding.
    for name, weights in alone.model.state_dict().items():
        torch.testing.assert_close(together.state_dict()[name], weights, rtol=0, atol=1e-5)
    history = json.loads((run / "history.json").read_text())
    for theirs, ours in zip(history, alone.history, strict=True):
        # The loss over both processes' images: either shard's own would be off by far more than this.
        assert theirs["train_loss"] == pytest.approx(ours.train_loss, rel=1e-5)
        assert theirs["val_acc"] == ours.val_acc
    metrics = read_metrics(run)
    assert metrics.test_acc == alone.metrics.test_acc
    page = write_report(run, splits=alone.splits).read_text()  # the same data the two processes read
    assert "<tr><td>processes (torchrun world size)</td><td>2</td></tr>" in page


def test_only_rank_0_speaks(two_processes):
    _, finished = two_processes
    epochs = DATA_PARALLEL_CONFIG.epochs
    assert [line.split(",")[0] for line in finished.stdout.splitlines() if line.startswith("Epoch")] == 2 * [
        f"Epoch [{n}]" for n in range(epochs)
    ]  # two runs (the two loaders), each printed once
    assert finished.stdout.count("fetching fake-mnist") == 1  # one process per machine fetches; the other waits


def test_the_shards_of_a_batch_partition_it():
    images, labels = torch.arange(51).float(), torch.arange(51)
    whole = TensorLoader(images, labels, 16, shuffle=True, generator=torch.Generator().manual_seed(3))
    shards = [
        shard_batches(
            TensorLoader(images, labels, 16, shuffle=True, generator=torch.Generator().manual_seed(3)), rank, 3
        )
        for rank in range(3)
    ]
    for batch, *parts in zip(whole, *shards, strict=True):
        assert sorted(torch.cat([labels for _, labels in parts]).tolist()) == sorted(batch[1].tolist())
        assert max(len(p[1]) for p in parts) - min(len(p[1]) for p in parts) <= 1
    # Any other loader is cut batch by batch, the same way.
    lists = [(images[i : i + 16], labels[i : i + 16]) for i in range(0, 51, 16)]
    cut = ShardedBatches(lists, 1, 3)
    assert next(labels.tolist() for _, labels in cut) == [1, 4, 7, 10, 13]
    assert shard_batches(whole, 0, 1) is whole


@pytest.mark.parametrize(
    ("size", "batch", "message"),
    [(50, 2, "the batch size is 2 images, fewer than the 3 processes"), (49, 16, "the last batch of an epoch is 1")],
)
def test_a_batch_too_small_to_share_is_refused(size, batch, message):
    loader = TensorLoader(torch.zeros(size, 1, 28, 28), torch.zeros(size, dtype=torch.int64), batch, shuffle=True)
    with pytest.raises(ValueError, match=message):
        shard_batches(loader, 0, 3)


def test_torchruns_environment_says_which_process_this_is(monkeypatch):
    for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    assert distributed.launched() == distributed.SINGLE and not distributed.SINGLE.parallel
    assert distributed.current() == distributed.SINGLE  # no group is started outside torchrun
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert distributed.launched() == distributed.Processes(rank=3, local_rank=1, world_size=4)
    assert distributed.launched().parallel and not distributed.launched().is_main


def test_under_torchrun_a_bad_flag_is_reported_once_and_other_errors_say_their_rank(monkeypatch, tmp_path):
    monkeypatch.setenv("WORLD_SIZE", "2")  # as torchrun sets them for the second of two processes
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("RANK", "1")
    quiet = cli("train", "--epochs", "0")
    assert (quiet.returncode, quiet.stderr) == (2, "")  # rank 0 parses the same flags and says it
    failed = cli("evaluate", tmp_path / "missing")
    assert failed.returncode == 1 and failed.stderr.startswith("mnist-logreg (rank 1): error: ")
    monkeypatch.setenv("RANK", "0")
    assert "argument --epochs: 0 must be a positive integer" in cli("train", "--epochs", "0").stderr
