"""Run folders: saving, loading, and refusing what is not a usable model."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from mnist_logreg import MNISTModel, RunError, load_run
from mnist_logreg.datasets import DATASETS
from mnist_logreg.runs import RunInfo, read_info, read_metrics, save_model
from mnist_logreg.weights import load_weights


def info(**changes):
    value = {"dataset": "mnist", "classes": [str(d) for d in range(10)], "input_size": 784}
    value.update(changes)
    return value


def test_a_saved_model_loads_back_identically_and_as_the_lesson_loads_it(tmp_path):
    torch.manual_seed(0)
    model = MNISTModel()
    save_model(tmp_path / "run", model, info())
    loaded, loaded_info = load_run(tmp_path / "run")
    assert loaded_info == RunInfo.from_json(info())
    assert loaded_info.layout == DATASETS["mnist"].layout  # a run from before layouts were recorded
    assert not loaded.training
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor)
    lesson_model = MNISTModel()  # the lesson's own two lines
    lesson_model.load_state_dict(torch.load(tmp_path / "run" / "model.pth"))
    assert torch.equal(lesson_model.linear.weight, model.linear.weight)
    assert not list((tmp_path / "run").glob(".*partial"))


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda run: (run / "model.pth").write_bytes(b"not a checkpoint"), "is not a readable checkpoint"),
        (
            lambda run: (run / "model.pth").write_bytes((run / "model.pth").read_bytes()[:200]),
            "is not a readable checkpoint",
        ),
        (lambda run: (run / "model.pth").unlink(), "no checkpoint at .*run 'mnist-logreg train' first"),
        (lambda run: (run / "model.json").unlink(), "model.json is missing"),
        (lambda run: (run / "model.json").write_text("{"), "model.json is not valid JSON"),
        (lambda run: (run / "model.json").write_text(json.dumps({"dataset": "mnist"})), "does not describe a model"),
        (lambda run: (run / "model.json").write_text(json.dumps(info(input_size=100))), "does not match the model"),
        (
            lambda run: torch.save({"linear.weight": torch.zeros(10, 784)}, run / "model.pth"),
            "does not match the model",
        ),
        (
            lambda run: torch.save(
                {"linear.weight": torch.full((10, 784), float("nan")), "linear.bias": torch.zeros(10)},
                run / "model.pth",
            ),
            "non-finite weights",
        ),
    ],
)
def test_a_damaged_run_is_refused_with_a_clear_message(tmp_path, damage, message):
    run = tmp_path / "run"
    save_model(run, MNISTModel(), info())
    damage(run)
    with pytest.raises(RunError, match=message):
        load_run(run)


def test_a_missing_run_folder_says_how_to_make_one(tmp_path):
    with pytest.raises(RunError, match="no run folder at .*run 'mnist-logreg train' first"):
        load_run(tmp_path / "absent")


def test_a_run_of_a_dataset_outside_the_table_needs_its_layout():
    with pytest.raises(RunError, match="names dataset 'emnist', which is not one of .* and gives no 'layout'"):
        RunInfo.from_json(info(dataset="emnist"))
    described = RunInfo.from_json(info(dataset="emnist", layout={"box": 24, "centre_of_mass": False}))
    assert described.layout.box == 24 and not described.layout.centre_of_mass
    assert RunInfo.from_json(info(dataset="fashion-mnist")).layout == DATASETS["fashion-mnist"].layout


def test_run_info_round_trips_through_model_json(tmp_path):
    original = RunInfo.from_json(info(preset="raw", seed=3, splits={"train": 5, "val": 2, "test": 1}))
    save_model(tmp_path / "run", MNISTModel(), original)
    assert read_info(tmp_path / "run") == original


@pytest.mark.parametrize(
    "value, message",
    [
        ({"test_acc": 0.9}, "does not hold a run's metrics"),
        ([], "does not hold a run's metrics"),
    ],
)
def test_incomplete_metrics_are_refused(tmp_path, value, message):
    (tmp_path / "metrics.json").write_text(json.dumps(value))
    with pytest.raises(RunError, match=message):
        read_metrics(tmp_path)


def test_metrics_from_before_the_confusion_matrix_still_load(tmp_path):
    old = {"test_acc": 0.9, "test_loss": 0.3, "val_acc": 0.9, "val_loss": 0.3, "train_seconds": 1.0}
    (tmp_path / "metrics.json").write_text(json.dumps(old))
    metrics = read_metrics(tmp_path)
    assert metrics.confusion is None and not metrics.interrupted
    assert metrics.to_json() == {**old, "confusion": None, "per_class": None, "calibration": None}


def test_predicting_reads_numpy_weights_equal_to_the_checkpoint(tmp_path):
    torch.manual_seed(2)
    model = MNISTModel()
    save_model(tmp_path / "run", model, info(input_transform="deskew"))
    weights, loaded_info = load_weights(tmp_path / "run")
    assert np.array_equal(weights.weight, model.linear.weight.detach().numpy())
    assert np.array_equal(weights.bias, model.linear.bias.detach().numpy())
    assert weights.input_transform == "deskew" == loaded_info.input_transform


def test_a_run_from_before_weights_npz_is_read_through_its_checkpoint(tmp_path):
    torch.manual_seed(3)
    model = MNISTModel()
    save_model(tmp_path / "run", model, info())
    (tmp_path / "run" / "weights.npz").unlink()
    weights, _ = load_weights(tmp_path / "run")
    assert np.array_equal(weights.weight, model.linear.weight.detach().numpy())


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda path: path.write_bytes(b"not an npz"), "is not readable weights"),
        (lambda path: np.savez(path, weight=np.zeros((10, 700), np.float32), bias=np.zeros(10, np.float32)), "shape"),
        (lambda path: np.savez(path, weight=np.full((10, 784), np.nan, np.float32), bias=np.zeros(10)), "non-finite"),
    ],
)
def test_damaged_numpy_weights_are_refused_clearly(tmp_path, damage, message):
    save_model(tmp_path / "run", MNISTModel(), info())
    damage(tmp_path / "run" / "weights.npz")
    with pytest.raises(RunError, match=message):
        load_weights(tmp_path / "run")
