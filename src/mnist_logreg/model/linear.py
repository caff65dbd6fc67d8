"""A run's model as numpy arrays, and the arithmetic of prediction on them: no torch needed.

A run's model is ``softmax((W x + b) / T)``: ``weights.npz`` holds W and b (7,850 numbers on the
pixels), ``model.json`` the temperature T, the input transform and feature map that make x, and
the reject threshold. Reading them takes milliseconds, so predicting starts fast and a server
worker stays small; a torch ``MNISTModel`` converts with ``as_weights`` and gives the same
probabilities.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..errors import RunError
from ..images.inputs import feature_count
from .calibration import softmax
from .run_folder import INFO_FILE, WEIGHTS_FILE, RunInfo, checked_run_dir, load_run, read_info


@dataclass
class LinearWeights:
    """A run's model as numpy arrays: what predicting needs, without torch."""

    weight: np.ndarray  # (outputs, features) float32: (classes, 784) on the pixels; "not a digit" last
    bias: np.ndarray  # (outputs,) float32
    input_transform: str = "none"
    features: str = "pixels"
    temperature: float = 1.0  # probabilities are softmax(logits / temperature)
    threshold: float | None = None  # accept an image only if its likeliest class has this probability


def as_weights(model) -> LinearWeights:
    """The numpy weights of a LinearWeights or of a torch MNISTModel."""
    if isinstance(model, LinearWeights):
        return model
    weight, bias = (p.detach().cpu().numpy() for p in (model.linear.weight, model.linear.bias))
    return LinearWeights(weight, bias, model.input_transform, model.features, model.temperature, model.threshold)


def load_weights(run_dir: Path | str) -> tuple[LinearWeights, RunInfo]:
    """The run's weights and ``RunInfo`` without importing torch (from weights.npz).

    Runs from before weights.npz existed are read through torch, once, the slow way.
    """
    run_dir = checked_run_dir(run_dir)
    info = read_info(run_dir)
    path = run_dir / WEIGHTS_FILE
    if not path.is_file():
        model, info = load_run(run_dir)  # the model carries the run's input transform
        return as_weights(model), info
    try:
        with np.load(path, allow_pickle=False) as arrays:
            weight, bias = arrays["weight"].astype(np.float32), arrays["bias"].astype(np.float32)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as error:
        raise RunError(f"{path} is not readable weights ({error}); retrain, or delete it to read model.pth") from None
    inputs = info.input_size if info.features == "pixels" else feature_count(info.features)
    if weight.shape != (info.outputs, inputs) or bias.shape != (info.outputs,):
        raise RunError(f"{path} holds weights of shape {weight.shape}, not the model in {INFO_FILE}")
    if not (np.isfinite(weight).all() and np.isfinite(bias).all()):
        raise RunError(f"{path} holds non-finite weights (NaN or inf); retrain with a smaller --lr")
    return LinearWeights(weight, bias, info.input_transform, info.features, info.temperature, info.threshold), info


def logits(weights: LinearWeights, inputs: np.ndarray) -> np.ndarray:
    """W x + b of the linear layer's inputs (N, features) -> (N, outputs), in float64."""
    return inputs.astype(np.float64) @ weights.weight.T.astype(np.float64) + weights.bias


def probabilities(weights: LinearWeights, inputs: np.ndarray) -> np.ndarray:
    """Calibrated softmax((W x + b) / T) of the linear layer's inputs (N, features) -> (N, outputs), in float64."""
    return softmax(logits(weights, inputs), weights.temperature)


def with_threshold(weights: LinearWeights, reject_below: float | None, no_reject: bool = False) -> LinearWeights:
    """The weights deciding as asked: every image accepted (``no_reject``), or those whose likeliest
    class has at least ``reject_below``; the run's own threshold when neither is given."""
    if no_reject:
        return replace(weights, threshold=None)
    return weights if reject_below is None else replace(weights, threshold=reject_below)
