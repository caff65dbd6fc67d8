"""What the report shows of a run, computed with numpy alone (its images reopened as
data/arrays.py reopens them): the test set's predictions, how each pen reads, and each class's mean evidence.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..data.arrays import DataArrays
from ..images.inputs import SIDE, apply_input_transform, feature_map, fold_to_pixels, unit_pixels
from ..model.linear import LinearWeights
from ..model.run_folder import RunInfo


@dataclass
class TestPredictions:
    labels: np.ndarray  # (N,) true class
    predicted: np.ndarray  # (N,) predicted class
    probabilities: np.ndarray  # (N, outputs), calibrated
    logits: np.ndarray  # (N, outputs)
    images: np.ndarray  # (N, 28, 28) uint8
    seen: np.ndarray  # (N, 784) float32: the images as the model saw them (input transform applied)


def seen_by(weights: LinearWeights, images: np.ndarray) -> np.ndarray:
    """uint8 images (N, 28, 28) as the model sees them: in [0, 1], input-transformed, flattened (N, 784)."""
    pixels = unit_pixels(images)
    return apply_input_transform(weights.input_transform, pixels).reshape(len(images), -1)


CHUNK = 1000  # images whose features are held at once: 10,000 test images' pixel pairs would be 400 MB


def predict_test_set(weights: LinearWeights, data: DataArrays, classes: int) -> TestPredictions:
    """The test images' logits and calibrated probabilities, and the likeliest of the ``classes`` (a reject
    class aside, as metrics.json counts them)."""
    seen, z, p = calibrated(weights, data.test_images)
    return TestPredictions(data.test_labels, p[:, :classes].argmax(1), p, z, data.test_images, seen)


def calibrated(weights: LinearWeights, images: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """uint8 images (N, 28, 28) as the model saw them (``seen_by``), their logits and calibrated probabilities."""
    from ..model.calibration import softmax
    from ..model.linear import logits

    seen = seen_by(weights, images)
    z = np.concatenate(
        [
            logits(weights, feature_map(weights.features, seen[start : start + CHUNK]))
            for start in range(0, len(seen), CHUNK)
        ]
    )
    return seen, z, softmax(z, weights.temperature)


PEN_TEST_DIGITS = 300  # test digits redrawn with each pen for the report's table: about a second in all


def pen_scores(weights: LinearWeights, info: RunInfo, predictions: TestPredictions) -> list[dict]:
    """How the run reads the test digits as they are, and redrawn with each pen at parameters its
    training never used (data/pens.py): per row, the ``set``, the pen's ``share`` and ``trained`` copies
    (None for the digits as they are), and the shares ``accepted`` and ``unsure``, ``right`` among
    the accepted, and ``top_right`` (the likeliest class right, accepted or not)."""
    from ..data.pens import PENS, pen_copies
    from ..model.calibration import ACCEPTED, UNSURE, answer_states

    classes = len(info.classes)

    def scored(name: str, probabilities: np.ndarray, labels: np.ndarray, share=None, trained=None) -> dict:
        states = answer_states(probabilities, classes, weights.threshold)
        right = probabilities[:, :classes].argmax(1) == labels
        taken = states == ACCEPTED
        return {
            "set": name,
            "share": share,
            "trained": trained,
            "accepted": float(taken.mean()),
            "unsure": float((states == UNSURE).mean()),
            "right": float(right[taken].mean()) if taken.any() else None,
            "top_right": float(right.mean()),
        }

    rows = [scored("test digits as they are", predictions.probabilities, predictions.labels)]
    chosen = np.random.default_rng(0).choice(
        len(predictions.labels), min(PEN_TEST_DIGITS, len(predictions.labels)), replace=False
    )
    recorded = info.pens or {}
    for pen in PENS:
        copies, _ = pen_copies(predictions.images[chosen], {pen: 1.0}, 0, layout=info.layout, which="test")
        share = recorded.get("shares", {}).get(pen, 0) / max(sum(recorded.get("shares", {}).values()), 1e-9)
        trained = recorded.get("counts", {}).get(pen)
        rows.append(
            scored(f"redrawn: {pen}", calibrated(weights, copies)[2], predictions.labels[chosen], share, trained)
        )
    return rows


def class_evidence(weights: LinearWeights, predictions: TestPredictions) -> dict[int, np.ndarray]:
    """Each class's mean evidence over its own test images, (28, 28) per class that has any: the exact
    contribution of each pixel to the class's logit (infer/explain.py), averaged.

    Evidence is linear in the inputs, so the mean map is the weights times the class's mean input,
    folded onto pixels: with the bias it sums to the class's mean logit, as one image's map sums
    to its logit. Unlike the weights of pixel pairs, it shows the shape the class responds to.
    """
    maps = {}
    for k in np.unique(predictions.labels).tolist():
        seen = predictions.seen[predictions.labels == k]
        mean_inputs = (
            sum(  # (features,), summed CHUNK images at a time: pairs are 13 times the pixels
                feature_map(weights.features, seen[start : start + CHUNK].reshape(-1, SIDE, SIDE)).sum(
                    axis=0, dtype=np.float64
                )
                for start in range(0, len(seen), CHUNK)
            )
            / len(seen)
        )
        parts = weights.weight[k].astype(np.float64) * mean_inputs
        maps[k] = fold_to_pixels(weights.features, parts).reshape(SIDE, SIDE)
    return maps
