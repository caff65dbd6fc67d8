"""A run's numpy weights: read without torch, equal to the checkpoint, and refused when damaged."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mnist_logreg import MNISTModel, RunError
from mnist_logreg.model.linear import load_weights
from mnist_logreg.model.run_folder import save_model
from tests.helpers import model_json


def test_predicting_reads_numpy_weights_equal_to_the_checkpoint(tmp_path):
    torch.manual_seed(2)
    model = MNISTModel()
    save_model(tmp_path / "run", model, model_json(input_transform="deskew"))
    weights, loaded_info = load_weights(tmp_path / "run")
    assert np.array_equal(weights.weight, model.linear.weight.detach().numpy())
    assert np.array_equal(weights.bias, model.linear.bias.detach().numpy())
    assert weights.input_transform == "deskew" == loaded_info.input_transform


def test_a_run_from_before_weights_npz_is_read_through_its_checkpoint(tmp_path):
    torch.manual_seed(3)
    model = MNISTModel()
    save_model(tmp_path / "run", model, model_json())
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
    save_model(tmp_path / "run", MNISTModel(), model_json())
    damage(tmp_path / "run" / "weights.npz")
    with pytest.raises(RunError, match=message):
        load_weights(tmp_path / "run")


def test_probabilities_are_the_softmax_of_the_logits_over_the_runs_temperature(tmp_path):
    from mnist_logreg.infer.classify import predict_pixels
    from mnist_logreg.model.run_folder import load_run

    torch.manual_seed(0)
    model = MNISTModel()
    with torch.no_grad():
        model.linear.weight *= 20  # logits a few units apart: a temperature of 3 moves every probability
    save_model(tmp_path / "run", model, model_json(temperature=3.0))
    pixels = np.random.default_rng(0).random((28, 28)).astype(np.float32)
    weights, info = load_weights(tmp_path / "run")
    logits = weights.weight.astype(np.float64) @ pixels.reshape(-1) + weights.bias

    def softmax(scaled: np.ndarray) -> np.ndarray:  # written out here, not the package's own
        exponentials = np.exp(scaled - scaled.max())
        return exponentials / exponentials.sum()

    expected = softmax(logits / 3.0)
    assert np.abs(expected - softmax(logits)).max() > 0.1  # a run that ignored its temperature would fail
    assert predict_pixels(pixels, weights, info.classes)["probabilities"] == pytest.approx(expected.tolist(), abs=1e-6)
    model, _ = load_run(tmp_path / "run")
    torch_probabilities = model.predict_proba(torch.from_numpy(pixels).reshape(1, 1, 28, 28))[0].numpy()
    assert torch_probabilities == pytest.approx(expected, abs=1e-6)
