"""Probabilities that mean what they say, and the rule that turns them into "not a digit".

Calibration: a trained softmax is often over- or under-confident. One temperature T, fitted
on the validation split after training (the T minimising the negative log likelihood of
softmax(z / T)), rescales every logit vector; the predicted class never changes, only how sure
the model says it is. The expected calibration error (ECE) measures the gap: over equal-width
bins of confidence, the mean |accuracy - confidence|, weighted by each bin's share of images.

The reject rule: an image is accepted when its score, the probability of its most likely
digit, is at least the run's threshold, and no other output (the reject class "not a digit")
is more likely. The threshold is chosen on the validation digits (``choose_threshold``). An
image not accepted is one of two things (``answer_states``): "not a digit" where the reject
class is the likeliest output, and "unsure" where a digit is likeliest but below the threshold:
a 3 that might be a 5 is not a letter.
numpy only.
"""

from __future__ import annotations

import numpy as np

from ..config import CALIBRATION_BINS, REJECT_CLASS
from ..data.catalog import DATASETS

DIGITS = list(DATASETS["mnist"].classes)  # the classes of a model that reads digits
MAX_NEWTON_STEPS = 100  # the temperature's fit takes five to ten; this only bounds a pathological case


def rejected_name(classes: list[str]) -> str:
    """What a rejected image is called: "not a digit", or, for a model of other classes, none of them."""
    return REJECT_CLASS if list(classes) == DIGITS else "none of the classes"


def output_name(classes: list[str], output: int) -> str:
    """The name of one of the model's outputs: a class, or, past the classes, the reject output's."""
    return classes[output] if output < len(classes) else rejected_name(classes)


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """softmax(logits / temperature) along the last axis, in float64."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=-1, keepdims=True)
    exp = np.exp(z)
    return exp / exp.sum(axis=-1, keepdims=True)


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature T > 0 minimising the mean cross-entropy of softmax(logits / T) at ``labels``.

    Newton's method on s = 1 / T, in numpy: the loss is convex in s (a log-sum-exp of lines in s),
    its slope the mean of E_p[z] - z_label and its curvature the mean of Var_p[z], so a few steps,
    each halved until the loss falls, reach the minimum. torch.optim would import torch's
    compiler on its first use, 1.7 s of a `tune` that should take two.
    """
    z = np.asarray(logits, dtype=np.float64)
    picked = z[np.arange(len(z)), np.asarray(labels)]
    s, value = 1.0, _scaled_loss(z, picked, 1.0)
    for _ in range(MAX_NEWTON_STEPS):
        p = softmax(z, 1.0 / s)
        mean = (p * z).sum(axis=1)
        slope = float(np.mean(mean - picked))
        curvature = float(np.mean((p * z * z).sum(axis=1) - mean * mean))
        step = slope / curvature if curvature > 0 else slope
        while s - step <= 0 or (tried := _scaled_loss(z, picked, s - step)) > value:
            step /= 2
            if abs(step) < 1e-12 * s:  # no step lowers the loss: s is the minimum
                return 1.0 / s
        s, value = s - step, tried
        if abs(step) < 1e-9 * s:
            break
    return 1.0 / s


def _scaled_loss(z: np.ndarray, picked: np.ndarray, s: float) -> float:
    """The mean cross-entropy of softmax(s · z) at the labels, whose logits are ``picked``."""
    scaled = s * z
    top = scaled.max(axis=1)
    return float(np.mean(top + np.log(np.exp(scaled - top[:, None]).sum(axis=1)) - s * picked))


def reliability(probabilities: np.ndarray, labels: np.ndarray, bins: int = CALIBRATION_BINS) -> list[dict]:
    """Per equal-width confidence bin: its ``low`` and ``high`` edges, ``count`` of images, mean
    ``confidence`` and ``accuracy`` (both None where the bin is empty). Confidence is the
    largest probability; an image is correct when that class is its label."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == np.asarray(labels)
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)  # (low, high], 0 in the first
    rows = []
    for b in range(bins):
        inside = which == b
        count = int(inside.sum())
        rows.append(
            {
                "low": float(edges[b]),
                "high": float(edges[b + 1]),
                "count": count,
                "confidence": float(confidence[inside].mean()) if count else None,
                "accuracy": float(correct[inside].mean()) if count else None,
            }
        )
    return rows


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, bins: int = CALIBRATION_BINS) -> float:
    """Σ over bins of (images in the bin / all images) · |accuracy - mean confidence|."""
    total = len(labels)
    return float(
        sum(
            row["count"] / total * abs(row["accuracy"] - row["confidence"])
            for row in reliability(probabilities, labels, bins)
            if row["count"]
        )
    )


def digit_scores(probabilities: np.ndarray, digits: int) -> np.ndarray:
    """Each image's score: the probability of its likeliest digit (of the first ``digits`` outputs),
    or -1 where another output (the reject class) is likelier still, so no threshold accepts it."""
    best = probabilities[:, :digits].max(axis=1)
    return np.where(probabilities.argmax(axis=1) < digits, best, -1.0)


def choose_threshold(scores: np.ndarray, accept_rate: float) -> float:
    """The largest threshold that accepts at least ``accept_rate`` of these (validation) scores; 0 where
    no threshold can, because so many images have "not a digit" likeliest (a score of -1)."""
    ordered = np.sort(np.asarray(scores))[::-1]
    return max(0.0, float(ordered[min(len(ordered), int(np.ceil(accept_rate * len(ordered)))) - 1]))


# An answer's three states, by their index in ``answer_states``' result.
STATES = ("accepted", "unsure", "rejected")
ACCEPTED, UNSURE, REJECTED = range(len(STATES))


def answer_states(probabilities: np.ndarray, digits: int, threshold: float | None) -> np.ndarray:
    """Each image's state, an index into STATES: REJECTED where an output after the first ``digits``
    (the reject class) is the likeliest; UNSURE where a digit is, with a probability under
    ``threshold``; ACCEPTED otherwise, and always without a threshold (no reject option).
    ``MNISTModel.answer_states`` is the same rule in torch."""
    if threshold is None:
        return np.full(len(probabilities), ACCEPTED)
    best = probabilities[:, :digits].max(axis=1)
    return np.where(probabilities.argmax(axis=1) >= digits, REJECTED, np.where(best < threshold, UNSURE, ACCEPTED))


def accepted(probabilities: np.ndarray, digits: int, threshold: float | None) -> np.ndarray:
    """Which images are taken for digits: all of them without a threshold (no reject option)."""
    if threshold is None:
        return np.ones(len(probabilities), dtype=bool)
    return digit_scores(probabilities, digits) >= threshold
