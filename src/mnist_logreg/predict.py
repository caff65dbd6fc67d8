"""Classifying images: preprocessed pixels, image files and folders of them.

Every image goes through ``preprocess.preprocess_image`` first; the model of a run applies its
own input transform (see ``preprocess.apply_input_transform``).
"""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image

from .datasets import DATASETS
from .preprocess import SIDE, WORKING_SIDE, open_image, preprocess_image

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


def predict_tensor(pixels: torch.Tensor, model, classes: list[str], top_k: int = 3) -> dict:
    """Prediction for one preprocessed image (1, 28, 28): label, class, probability, top_k,
    probabilities, and ``pixels``, the image as the model saw it (after its input transform)."""
    with torch.no_grad():
        seen = model.seen(pixels.unsqueeze(0).to(next(model.parameters()).device))  # (1, 784)
        probabilities = torch.softmax(model.linear(seen), dim=1)[0].cpu()
    order = torch.argsort(probabilities, descending=True)[: max(1, min(top_k, len(classes)))].tolist()
    label = order[0]
    return {
        "label": label,
        "class": classes[label],
        "probability": float(probabilities[label]),
        "top_k": [{"label": k, "class": classes[k], "probability": float(probabilities[k])} for k in order],
        "probabilities": [float(p) for p in probabilities],
        "pixels": seen.reshape(1, SIDE, SIDE).cpu(),
    }


def predict_image_file(path: str | Path | bytes, model, info=None, top_k: int = 3) -> dict:
    """Open, preprocess and classify one image file (or bytes). Raises ImageError for a bad file.

    ``info`` is the run's RunInfo (its layout and class names); without one, MNIST's.
    """
    spec = DATASETS["mnist"]
    layout, classes = (spec.layout, list(spec.classes)) if info is None else (info.layout, info.classes)
    return predict_tensor(preprocess_image(open_image(path, reduce_to=WORKING_SIDE), layout), model, classes, top_k)


def expand_paths(paths: list[str | Path]) -> list[Path]:
    """Files as given, and the image files (by suffix) inside any folder, sorted."""
    expanded = []
    for path in map(Path, paths):
        if path.is_dir():
            expanded += sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        else:
            expanded.append(path)
    return expanded


def save_pixels(pixels: torch.Tensor, path) -> None:
    """Write what the model saw, (1, 28, 28) in [0, 1], as an 8-bit 28×28 PNG."""
    values = pixels[0].clamp(0, 1).mul(255).round().to(torch.uint8).numpy()
    Image.fromarray(values, mode="L").save(path, format="PNG")
