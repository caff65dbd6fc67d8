"""Classifying one image, with numpy alone: preprocessed pixels, or an image file or its bytes.

Every image goes through ``preprocess.preprocess_array`` first, then the run's input transform
and feature map (``images/inputs.py``), then the linear layer (``model/linear.py``). Reading a whole number
is ``infer/number.py``; many files at once, in worker processes, ``infer/batch.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from ..config import TOP_K
from ..data.catalog import DATASETS
from ..images.inputs import SIDE, apply_input_transform, byte_pixels, feature_map
from ..images.preprocess import NoInk, preprocess_file
from ..model.calibration import ACCEPTED, DIGITS, REJECTED, STATES, UNSURE, answer_states, rejected_name
from ..model.linear import as_weights, probabilities

UNSURE_CLASS = "unsure"  # the class of an answer that is not sure which of two classes it is


def predict_pixels(pixels, model, classes: list[str], top_k: int = TOP_K) -> dict:
    """Prediction for one preprocessed image (28, 28) or (1, 28, 28), numpy or torch: ``state``,
    ``accepted``, label, class, probability, top_k, probabilities, and ``pixels``, the image as
    the model saw it (after its input transform, before its feature map), (1, 28, 28) float32.

    ``state`` is one of calibration.STATES, by the run's rule:
    - "accepted": a class (``label``, ``class``, and its ``probability``);
    - "unsure": a class is the likeliest but below the run's threshold: ``class`` "unsure",
      ``candidates`` the two likeliest classes ("3 or 5?") and ``probability`` the two's together;
    - "rejected": the reject output is the likeliest: ``class`` "not a digit" (or "none of the
      classes"), ``probability`` one minus its likeliest class's.
    ``accepted`` is true for the first only, and ``label`` null for the other two. ``top_k``
    lists the likeliest classes; ``probabilities`` has one per output, "not a digit" last for a
    run with a reject class."""
    weights = as_weights(model)
    image = np.asarray(pixels, dtype=np.float32).reshape(1, SIDE, SIDE)
    seen = apply_input_transform(weights.input_transform, image)  # (1, 28, 28)
    p = probabilities(weights, feature_map(weights.features, seen))[0]
    ranked = np.argsort(-p[: len(classes)], kind="stable").tolist()
    order = ranked[: max(1, min(top_k, len(classes)))]
    label = order[0]
    state = int(answer_states(p[None], len(classes), weights.threshold)[0])
    answer = {
        "state": STATES[state],
        "accepted": state == ACCEPTED,
        "label": label if state == ACCEPTED else None,
        "class": classes[label] if state == ACCEPTED else rejected_name(classes),
        "probability": float(p[label]) if state == ACCEPTED else 1 - float(p[label]),
    }
    if state == UNSURE:
        pair = ranked[:2]
        answer |= {
            "class": UNSURE_CLASS,
            "candidates": [classes[k] for k in pair],
            "probability": float(p[pair].sum()),
        }
    return answer | {
        "top_k": [{"label": k, "class": classes[k], "probability": float(p[k])} for k in order],
        "probabilities": [float(v) for v in p],
        "pixels": seen,
    }


def shown_class(answer: dict) -> str:
    """An answer's class as a person reads it: "3", "not a digit", or "3 or 5?" when unsure."""
    if answer.get("state") == STATES[UNSURE]:
        return " or ".join(answer["candidates"]) + "?"
    return answer["class"]


def predict_image_file(path: str | Path | bytes, model, info=None, top_k: int = TOP_K) -> dict:
    """Open, preprocess and classify one image file (or bytes). Raises ImageError for a bad file;
    one without ink is not a digit (``blank_answer``).

    ``model`` is a run's LinearWeights or a torch MNISTModel; ``info`` its RunInfo (layout and
    class names), MNIST's without one.
    """
    layout, classes = layout_and_classes(info)
    try:
        pixels = preprocess_file(path, layout)
    except NoInk as nothing:
        return blank_answer(model, classes, top_k, str(nothing))
    return predict_pixels(pixels, model, classes, top_k)


def blank_answer(model, classes: list[str], top_k: int, reason: str) -> dict:
    """The answer for an image with no ink: not a digit (nor any class), for certain, and ``reason``
    says why. Decided before the model is asked, so that a run without a reject class, or
    ``--no-reject``, answers a blank page alike; ``top_k``, ``probabilities`` and ``pixels`` are
    the model's own on the empty 28×28 canvas, as for any other image."""
    answer = predict_pixels(np.zeros((SIDE, SIDE), dtype=np.float32), model, classes, top_k)
    answer.pop("candidates", None)
    return answer | {
        "state": STATES[REJECTED],
        "accepted": False,
        "label": None,
        "class": rejected_name(classes),
        "probability": 1.0,
        "reason": reason,
    }


def layout_and_classes(info) -> tuple:
    """The run's placement and class names from its RunInfo; MNIST's without one."""
    if info is None:
        return DATASETS["mnist"].layout, DIGITS
    return info.layout, info.classes


def kept(
    result: dict, name: str, weights, classes: list[str], *, save_preprocessed: Path | None, explain: Path | None
) -> dict:
    """``result`` without its pixels, which are written, as ``name``, into the folders given: what
    the model saw into ``save_preprocessed``, its evidence maps into ``explain``."""
    pixels = result.pop("pixels")
    if save_preprocessed:
        save_pixels(pixels, save_preprocessed / name)
    if explain:
        from .explain import evidence, save_evidence_figure

        save_evidence_figure(evidence(weights, pixels), classes, explain / name)
    return result


def save_pixels(pixels, path) -> None:
    """Write what the model saw, (1, 28, 28) or (28, 28) in [0, 1], as an 8-bit 28×28 PNG."""
    values = np.asarray(pixels, dtype=np.float32).reshape(SIDE, SIDE)
    Image.fromarray(byte_pixels(values), mode="L").save(path, format="PNG")
