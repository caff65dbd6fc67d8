"""Run folders: saving, loading, and refusing what is not a usable model."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from mnist_logreg import MNISTModel, RunError, load_run
from mnist_logreg.data.catalog import DATASETS
from mnist_logreg.images.preprocess import open_image, preprocess_image
from mnist_logreg.infer.classify import predict_image_file
from mnist_logreg.model.linear import load_weights
from mnist_logreg.model.run_folder import (
    FORMAT_VERSION,
    RunInfo,
    read_info,
    read_metrics,
    save_model,
    upgrade_info,
)
from tests.helpers import model_json


def test_a_saved_model_loads_back_identically_and_as_the_lesson_loads_it(tmp_path):
    torch.manual_seed(0)
    model = MNISTModel()
    save_model(tmp_path / "run", model, model_json())
    loaded, loaded_info = load_run(tmp_path / "run")
    assert loaded_info == RunInfo.from_json(model_json())
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
        (
            lambda run: (run / "model.json").write_text(json.dumps(model_json(input_size=100))),
            "does not match the model",
        ),
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
    save_model(run, MNISTModel(), model_json())
    damage(run)
    with pytest.raises(RunError, match=message):
        load_run(run)


def test_a_missing_run_folder_says_how_to_make_one(tmp_path):
    with pytest.raises(RunError, match=r"no run folder at .*run 'mnist-logreg train' first"):
        load_run(tmp_path / "absent")


def test_a_run_of_a_dataset_outside_the_table_needs_its_layout():
    with pytest.raises(RunError, match=r"names dataset 'emnist', which is not one of .* and gives no 'layout'"):
        RunInfo.from_json(model_json(dataset="emnist"))
    described = RunInfo.from_json(model_json(dataset="emnist", layout={"box": 24, "centre_of_mass": False}))
    assert described.layout.box == 24 and not described.layout.centre_of_mass
    assert RunInfo.from_json(model_json(dataset="fashion-mnist")).layout == DATASETS["fashion-mnist"].layout


def test_run_info_round_trips_through_model_json(tmp_path):
    original = RunInfo.from_json(model_json(preset="raw", seed=3, splits={"train": 5, "val": 2, "test": 1}))
    save_model(tmp_path / "run", MNISTModel(), original)
    assert read_info(tmp_path / "run") == original


def test_model_json_holds_each_setting_once_and_older_folders_still_load(tmp_path):
    from mnist_logreg.config import get_preset

    recipe = get_preset("default", "mnist").to_dict()
    info = RunInfo.from_json(
        model_json(
            input_transform="deskew",
            features="pixel-pairs",
            reject={"threshold": 0.5},
            pens={"copies_per_digit": 1},
            splits={"val": 10000},
        )
    )
    info.hyperparameters = RunInfo.hyperparameters_of(recipe)
    save_model(tmp_path / "run", MNISTModel(features="pixel-pairs", input_transform="deskew", reject=True), info)
    written = json.loads((tmp_path / "run" / "model.json").read_text())
    assert not set(written) & set(written["hyperparameters"])  # no value at the top and again inside
    assert "val_size" not in written["hyperparameters"] and written["splits"]["val"] == 10000
    assert read_info(tmp_path / "run").recipe == recipe  # yet every setting is there to read
    # A folder of format 1: the seed at the top, and copies inside the hyperparameters.
    assert written["format_version"] == FORMAT_VERSION == 2
    old = {k: v for k, v in written.items() if k != "format_version"} | {
        "seed": 7,
        "hyperparameters": recipe | {"seed": 7},
    }
    (tmp_path / "run" / "model.json").write_text(json.dumps(old))
    loaded = read_info(tmp_path / "run")
    assert loaded.seed == 7 and loaded.recipe == recipe | {"seed": 7}
    assert not set(loaded.to_json()) & set(loaded.to_json()["hyperparameters"])


def test_a_format_1_model_json_is_upgraded_with_what_it_implies_and_nothing_made_up(tmp_path):
    old = model_json(seed=5, input_normalisation="none")  # no format_version, layout or created
    save_model(tmp_path / "run", MNISTModel(), RunInfo.from_json(old))
    (tmp_path / "run" / "model.json").write_text(json.dumps(old))
    info = read_info(tmp_path / "run")
    assert info.layout == DATASETS["mnist"].layout  # an MNIST run placed images as MNIST does
    assert info.seed == 5 and info.format_version == FORMAT_VERSION
    assert info.created is None  # not the time it happened to be read
    assert "input_normalisation" not in info.to_json()
    assert upgrade_info(info.to_json()) == info.to_json()  # the current layout passes unchanged


def test_a_model_json_of_a_newer_format_is_refused_by_name(tmp_path):
    save_model(tmp_path / "run", MNISTModel(), RunInfo.from_json(model_json()))
    written = json.loads((tmp_path / "run" / "model.json").read_text())
    (tmp_path / "run" / "model.json").write_text(json.dumps(written | {"format_version": FORMAT_VERSION + 1}))
    with pytest.raises(
        RunError, match=f"format_version {FORMAT_VERSION + 1}; this mnist-logreg reads up to {FORMAT_VERSION}"
    ):
        read_info(tmp_path / "run")


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


def test_a_run_without_the_field_loads_and_predicts_as_before(tmp_path):
    """A run folder written before input transforms and feature maps existed: no transform, the
    pixels, the plain linear model; through torch and through its numpy weights alike."""
    torch.manual_seed(1)
    model = MNISTModel()
    info = model_json(preset="default")
    save_model(tmp_path / "old", model, info)
    assert "features" not in json.loads((tmp_path / "old" / "model.json").read_text())
    loaded, loaded_info = load_run(tmp_path / "old")
    assert loaded_info.input_transform == "none" and loaded.input_transform == "none"
    assert loaded_info.features == "pixels" and loaded.features == "pixels" and loaded.linear.in_features == 784
    weights, _ = load_weights(tmp_path / "old")
    assert (weights.input_transform, weights.features, weights.weight.shape) == ("none", "pixels", (10, 784))
    image = Image.new("L", (120, 120), 255)
    ImageDraw.Draw(image).line([(40, 20), (80, 100)], fill=0, width=9)
    image.save(tmp_path / "one.png")
    pixels = preprocess_image(open_image(tmp_path / "one.png"))
    with torch.no_grad():
        expected = torch.softmax(model.linear(pixels.reshape(1, 784)), 1)[0]
    got = predict_image_file(tmp_path / "one.png", loaded, loaded_info)
    assert np.allclose(got["probabilities"], expected.numpy(), atol=1e-7)
    assert np.array_equal(got["pixels"], pixels.numpy())  # nothing applied on top of the preprocessing


def test_a_run_naming_an_unknown_feature_map_is_refused_clearly(tmp_path):
    info = model_json(features="edges")
    save_model(tmp_path / "run", MNISTModel(), info)
    with pytest.raises(RunError, match=r"features='edges' is not one of .* is it from a newer mnist-logreg"):
        load_weights(tmp_path / "run")


def test_a_run_naming_an_unknown_transform_is_refused_clearly(tmp_path):
    info = model_json(input_transform="warp")
    save_model(tmp_path / "run", MNISTModel(), info)
    with pytest.raises(RunError, match="input_transform='warp' is not one of"):
        load_run(tmp_path / "run")
