"""Classifying images: preprocessed pixels, image files and folders of them, with numpy alone.

Every image goes through ``preprocess.preprocess_array`` first, then the run's input transform,
then the linear layer: ``softmax(W x + b)``. A run's weights are 7,850 numbers, read from
weights.npz without torch (``runs.load_weights``), so predicting starts fast and a server
worker stays small; a torch ``MNISTModel`` is accepted too and gives the same probabilities.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from .datasets import DATASETS
from .preprocess import SIDE, WORKING_SIDE, apply_input_transform, open_image, preprocess_array
from .runs import LinearWeights

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


def as_weights(model) -> LinearWeights:
    """The numpy weights of a LinearWeights or of a torch MNISTModel."""
    if isinstance(model, LinearWeights):
        return model
    weight, bias = (p.detach().cpu().numpy() for p in (model.linear.weight, model.linear.bias))
    return LinearWeights(weight, bias, model.input_transform)


def probabilities(weights: LinearWeights, seen: np.ndarray) -> np.ndarray:
    """softmax(W x + b) of inputs already transformed, (N, 784) -> (N, classes), in float64."""
    logits = seen.astype(np.float64) @ weights.weight.T.astype(np.float64) + weights.bias
    logits -= logits.max(axis=1, keepdims=True)
    exp = np.exp(logits)
    return exp / exp.sum(axis=1, keepdims=True)


def predict_pixels(pixels, model, classes: list[str], top_k: int = 3) -> dict:
    """Prediction for one preprocessed image (28, 28) or (1, 28, 28), numpy or torch: label, class,
    probability, top_k, probabilities, and ``pixels``, the image as the model saw it (after its
    input transform), (1, 28, 28) float32."""
    weights = as_weights(model)
    image = np.asarray(pixels, dtype=np.float32).reshape(1, SIDE, SIDE)
    seen = apply_input_transform(weights.input_transform, image)  # (1, 28, 28)
    p = probabilities(weights, seen.reshape(1, -1))[0]
    order = np.argsort(-p, kind="stable")[: max(1, min(top_k, len(classes)))].tolist()
    label = order[0]
    return {
        "label": label,
        "class": classes[label],
        "probability": float(p[label]),
        "top_k": [{"label": k, "class": classes[k], "probability": float(p[k])} for k in order],
        "probabilities": [float(v) for v in p],
        "pixels": seen,
    }


def predict_image_file(path: str | Path | bytes, model, info=None, top_k: int = 3) -> dict:
    """Open, preprocess and classify one image file (or bytes). Raises ImageError for a bad file.

    ``model`` is a run's LinearWeights or a torch MNISTModel; ``info`` its RunInfo (layout and
    class names), MNIST's without one.
    """
    spec = DATASETS["mnist"]
    layout, classes = (spec.layout, list(spec.classes)) if info is None else (info.layout, info.classes)
    pixels = preprocess_array(open_image(path, reduce_to=WORKING_SIDE), layout)
    return predict_pixels(pixels, model, classes, top_k)


def expand_paths(paths: list[str | Path]) -> list[Path]:
    """Files as given, and the image files (by suffix) inside any folder, sorted."""
    expanded = []
    for path in map(Path, paths):
        if path.is_dir():
            expanded += sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        else:
            expanded.append(path)
    return expanded


def save_pixels(pixels, path) -> None:
    """Write what the model saw, (1, 28, 28) or (28, 28) in [0, 1], as an 8-bit 28×28 PNG."""
    values = np.asarray(pixels, dtype=np.float32).reshape(SIDE, SIDE)
    Image.fromarray(np.round(np.clip(values, 0, 1) * 255).astype(np.uint8), mode="L").save(path, format="PNG")
