"""Whole jobs: the run folder a training writes (never over another run), runs/latest, and divergence."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mnist_logreg.config import TrainConfig
from mnist_logreg.errors import RunError
from mnist_logreg.train.run import TrainingDiverged, train_run

CONFIG = TrainConfig(epochs=1, lr=0.05, batch_size=32, optimizer="adam", val_size=60)


def train(spec, data_dir, run_dir, config=CONFIG, **options):
    return train_run(spec, config, data_dir=data_dir, run_dir=run_dir, verbose=False, log=lambda m: None, **options)


def test_a_run_folder_that_holds_something_is_refused_unless_overwritten(fake_data, tmp_path):
    spec, data_dir = fake_data
    run = tmp_path / "runs" / "run"
    train(spec, data_dir, run)
    (run / "report.html").write_text("the old run's report")
    before = (run / "model.pth").read_bytes()
    with pytest.raises(RunError, match="already holds a run; choose another --out, or give --overwrite"):
        train(spec, data_dir, run)
    assert (run / "model.pth").read_bytes() == before  # nothing was touched
    train(spec, data_dir, run, config=CONFIG.updated(seed=7), overwrite=True)
    assert not (run / "report.html").exists()  # a clean folder: the new run alone, no old figures beside it
    assert sorted(p.name for p in run.iterdir()) == [
        "history.json",
        "metrics.json",
        "model.json",
        "model.pth",
        "weights.npz",
    ]
    assert json.loads((run / "model.json").read_text())["hyperparameters"]["seed"] == 7


def test_overwrite_replaces_runs_only(fake_data, tmp_path):
    spec, data_dir = fake_data
    mine = tmp_path / "thesis"
    mine.mkdir()
    (mine / "chapter1.tex").write_text("months of work")
    with pytest.raises(RunError, match=r"is not a run folder .no model.json.; --overwrite replaces runs only"):
        train(spec, data_dir, mine, overwrite=True)
    assert (mine / "chapter1.tex").read_text() == "months of work"


def test_latest_points_at_the_run_written_last(fake_data, tmp_path):
    spec, data_dir = fake_data
    runs = tmp_path / "runs"
    train(spec, data_dir, runs / "first")
    assert (runs / "latest").resolve() == (runs / "first").resolve()
    train(spec, data_dir, runs / "second")
    assert (runs / "latest").is_symlink() and (runs / "latest").resolve() == (runs / "second").resolve()
    assert (runs / "latest" / "model.json").is_file()
    train(spec, data_dir, runs / "latest", config=CONFIG.updated(seed=3), overwrite=True)  # through the link
    assert (runs / "latest").is_symlink() and (runs / "latest").resolve() == (runs / "second").resolve()
    assert json.loads((runs / "second" / "model.json").read_text())["hyperparameters"]["seed"] == 3
    assert sorted(p.name for p in runs.iterdir()) == ["first", "latest", "second"]  # no stray link files


def test_a_run_outside_a_runs_folder_makes_no_latest_link_there(fake_data, tmp_path):
    spec, data_dir = fake_data
    result = train(spec, data_dir, tmp_path / "scratch" / "run-e1")
    assert result.latest is None
    assert sorted(p.name for p in (tmp_path / "scratch").iterdir()) == ["run-e1"]
    assert train(spec, data_dir, tmp_path / "runs" / "run").latest == tmp_path / "runs" / "latest"


def test_evaluate_names_the_run_that_latest_points_to_not_the_link(fake_data, tmp_path, monkeypatch):
    from mnist_logreg.train.run import evaluate_run

    spec, data_dir = fake_data
    monkeypatch.chdir(tmp_path)
    train(spec, data_dir, Path("runs") / "first")
    assert evaluate_run("runs/latest", "val", data_dir, dataset=spec)["run"] == "runs/first"
    train(spec, data_dir, Path("runs") / "second")
    assert evaluate_run("runs/latest", "val", data_dir, dataset=spec)["run"] == "runs/second"
    assert evaluate_run(tmp_path / "runs" / "first", "val", data_dir, dataset=spec)["run"] == str(
        tmp_path / "runs" / "first"
    )


def test_a_diverging_run_stops_at_the_first_non_finite_loss_and_keeps_the_last_finite_epoch(fake_data, tmp_path):
    """SGD with lr · weight decay = 9 multiplies the weights by -8 every step: they overflow in epoch 2."""
    spec, data_dir = fake_data
    config = TrainConfig(epochs=5, lr=9.0, weight_decay=1.0, batch_size=8, val_size=60)
    run = tmp_path / "run"
    with pytest.raises(TrainingDiverged) as raised:
        train(spec, data_dir, run, config=config)
    message = str(raised.value)
    assert message.startswith("the training loss became inf at step ") and " of epoch 2 with --lr 9; " in message
    assert message.endswith(f"try a smaller --lr; the 1 epoch(s) before it are saved in {run}, marked interrupted")
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["interrupted"] is True and metrics["epochs_completed"] == 1
    history = json.loads((run / "history.json").read_text())
    assert len(history) == 1 and all(history[0][k] is not None for k in ("train_loss", "val_loss"))
    assert not (run / "resume.pt").exists()  # resuming would only diverge again


def test_a_run_diverging_in_its_first_epoch_saves_nothing(fake_data, tmp_path):
    spec, data_dir = fake_data
    config = TrainConfig(epochs=2, lr=40.0, weight_decay=1.0, batch_size=8, val_size=60)
    with pytest.raises(TrainingDiverged, match="of epoch 1 with --lr 40; try a smaller --lr; no epoch was complete"):
        train(spec, data_dir, tmp_path / "run", config=config)
    assert not (tmp_path / "run" / "model.pth").exists()
