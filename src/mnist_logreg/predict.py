"""Classifying images: preprocessed pixels, image files and folders of them, with numpy alone.

Every image goes through ``preprocess.preprocess_array`` first, then the run's input transform,
then the linear layer: ``softmax(W x + b)``. A run's weights are 7,850 numbers, read from
weights.npz without torch (``runs.load_weights``), so predicting starts fast and a server
worker stays small; a torch ``MNISTModel`` is accepted too and gives the same probabilities.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
from PIL import Image

from .calibration import accepted, softmax
from .config import REJECT_CLASS, TOP_K
from .datasets import DATASETS
from .inputs import SIDE, apply_input_transform, feature_map
from .preprocess import (
    WORKING_SIDE,
    ImageError,
    ink_of,
    open_image,
    place_ink,
    preprocess_array,
)
from .runs import LinearWeights, as_weights
from .segment import split_digits

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
DIGITS = list(DATASETS["mnist"].classes)  # what `read` needs a model to tell apart


class NotADigitModel(ValueError):
    """Reading numbers needs a model of the digits 0-9."""


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


def rejected_name(classes: list[str]) -> str:
    """What a rejected image is called: "not a digit", or, for a model of other classes, none of them."""
    return REJECT_CLASS if list(classes) == DIGITS else "none of the classes"


def predict_pixels(pixels, model, classes: list[str], top_k: int = TOP_K) -> dict:
    """Prediction for one preprocessed image (28, 28) or (1, 28, 28), numpy or torch: ``accepted``,
    label, class, probability, top_k, probabilities, and ``pixels``, the image as the model saw it
    (after its input transform, before its feature map), (1, 28, 28) float32.

    ``top_k`` lists the likeliest classes. ``probabilities`` has one per output, "not a digit"
    last for a run with a reject class. An image the run's rule rejects (calibration.py) is
    ``accepted: False``, with ``label`` None, ``class`` "not a digit" and ``probability`` one
    minus its likeliest class's."""
    weights = as_weights(model)
    image = np.asarray(pixels, dtype=np.float32).reshape(1, SIDE, SIDE)
    seen = apply_input_transform(weights.input_transform, image)  # (1, 28, 28)
    p = probabilities(weights, feature_map(weights.features, seen))[0]
    order = np.argsort(-p[: len(classes)], kind="stable")[: max(1, min(top_k, len(classes)))].tolist()
    label = order[0]
    taken = bool(accepted(p[None], len(classes), weights.threshold)[0])
    return {
        "accepted": taken,
        "label": label if taken else None,
        "class": classes[label] if taken else rejected_name(classes),
        "probability": float(p[label]) if taken else 1 - float(p[label]),
        "top_k": [{"label": k, "class": classes[k], "probability": float(p[k])} for k in order],
        "probabilities": [float(v) for v in p],
        "pixels": seen,
    }


def predict_image_file(path: str | Path | bytes, model, info=None, top_k: int = TOP_K) -> dict:
    """Open, preprocess and classify one image file (or bytes). Raises ImageError for a bad file.

    ``model`` is a run's LinearWeights or a torch MNISTModel; ``info`` its RunInfo (layout and
    class names), MNIST's without one.
    """
    layout, classes = _layout_and_classes(info)
    pixels = preprocess_array(open_image(path, reduce_to=WORKING_SIDE), layout)
    return predict_pixels(pixels, model, classes, top_k)


def _layout_and_classes(info) -> tuple:
    """The run's placement and class names from its RunInfo; MNIST's without one."""
    if info is None:
        return DATASETS["mnist"].layout, DIGITS
    return info.layout, info.classes


def check_reads_digits(info) -> None:
    """Refuse, with the reason, a run whose classes are not the digits 0-9 (a Fashion-MNIST run)."""
    if info is not None and info.classes != DIGITS:
        raise NotADigitModel(
            f"reading numbers needs a model of the digits 0-9, and this is a {info.dataset} run "
            f"(classes {', '.join(info.classes[:3])}, ...)"
        )


def draw_boxes(image: Image.Image, reading: dict) -> Image.Image:
    """A copy of the image with each digit's box and reading drawn on it, and the number above."""
    from PIL import ImageDraw, ImageFont

    canvas = image.convert("RGB")
    draw = ImageDraw.Draw(canvas)
    side = max(canvas.size)
    font = ImageFont.load_default(size=max(12, side // 30))
    line = max(2, side // 300)
    for digit in reading["digits"]:
        x, y, w, h = digit["box"]
        colour, said = ((220, 40, 40), digit["label"]) if digit["accepted"] else ((130, 130, 130), "×")
        draw.rectangle([x, y, x + w, y + h], outline=colour, width=line)
        draw.text((x, max(0, y - side // 28)), f"{said} {digit['probability']:.2f}", fill=colour, font=font)
    draw.text((line * 2, line * 2), reading["text"], fill=(40, 90, 220), font=font)
    return canvas


def read_image_file(path: str | Path | bytes, model, info=None, top_k: int = TOP_K, with_pixels: bool = False) -> dict:
    """Read the number written in an image: ``{"text", "probability", "digits"}``.

    The ink is found with ``predict``'s cleaning, split into digits (``segment.split_digits``),
    and each digit is placed the MNIST way and classified. A part the run rejects (a letter, a
    smudge) stays in ``digits`` with ``accepted: False`` and is left out of ``text``.
    ``probability`` is the product of the accepted digits' probabilities (0 if none is); each
    digit's ``box`` is [x, y, w, h] in the original image's pixels.
    ``with_pixels`` keeps each digit's ``pixels``, as the model saw them (to explain it).
    Raises ImageError for a bad file or one without ink.
    """
    check_reads_digits(info)
    layout, classes = _layout_and_classes(info)
    model = as_weights(model)  # once, not for every digit and every cut tried
    image = open_image(path, reduce_to=WORKING_SIDE)
    ink = ink_of(image)
    scale = image.info.get("stored_side", max(image.size)) / max(ink.shape)  # ink pixels -> original pixels

    def read(mask: np.ndarray) -> dict:
        return predict_pixels(place_ink(np.where(mask, ink, 0), layout), model, classes, top_k)

    digits = []
    # A cut is judged by how likely the digit it leaves is, whether or not the part is accepted.
    for digit in split_digits(ink, confidence=lambda mask: read(mask)["top_k"][0]["probability"]):
        reading = read(digit.mask)
        box = [round(v * scale) for v in digit.box]
        keys = ("accepted", "label", "probability", "top_k") + (("pixels",) if with_pixels else ())
        digits.append({k: reading[k] for k in keys} | {"box": box})
    if not digits:
        raise ImageError("no digits found")
    read_digits = [d for d in digits if d["accepted"]]
    return {
        "text": "".join(classes[d["label"]] for d in read_digits),
        "probability": float(np.prod([d["probability"] for d in read_digits])) if read_digits else 0.0,
        "digits": digits,
    }


def predict_files(
    paths: Iterable[Path],
    run_dir: Path,
    top_k: int = TOP_K,
    workers: int = 1,
    save_preprocessed: Path | None = None,
    explain: Path | None = None,
    reject: tuple[float | None, bool] = (None, False),
) -> Iterator[dict]:
    """Predict each file, in input order, as a stream: ``{"path", ...prediction}`` or ``{"path", "error"}``.

    With ``workers`` > 1, files are decoded, cleaned and classified in that many processes (no
    more than there are files), each loading the run's weights once; results come back in input
    order as they are ready, so a caller that writes each one out keeps its memory flat over any
    number of files. ``reject`` is ``with_threshold``'s (reject_below, no_reject).
    """
    jobs = enumerate(paths)  # consumed as the workers take them: no list of every file
    first = list(itertools.islice(jobs, workers))  # starting a process costs more than one file
    jobs = itertools.chain(first, jobs)
    workers = min(workers, len(first))
    options = (Path(run_dir), top_k, save_preprocessed, explain, reject)
    if workers <= 1:
        _start_worker(*options)
        yield from map(_predict_one, jobs)
        return
    import multiprocessing

    # Fresh processes (spawn), not forks: a fork copies the parent's thread pools (OpenCV's,
    # torch's) mid-state, and a child can wait forever on a lock no thread will release.
    with multiprocessing.get_context("spawn").Pool(workers, initializer=_start_worker, initargs=options) as pool:
        yield from pool.imap(_predict_one, jobs, chunksize=8)


_worker: dict = {}  # what one predicting process holds: weights, info and options, loaded once


def _start_worker(
    run_dir: Path, top_k: int, save_preprocessed: Path | None, explain: Path | None, reject: tuple[float | None, bool]
) -> None:
    import cv2

    from .runs import load_weights

    cv2.setNumThreads(1)  # the processes are the parallelism
    weights, info = load_weights(run_dir)
    weights = with_threshold(weights, *reject)
    _worker.update(weights=weights, info=info, top_k=top_k, save_preprocessed=save_preprocessed, explain=explain)


def _predict_one(job: tuple[int, Path | PathError]) -> dict:
    number, path = job
    if isinstance(path, PathError):
        return {"path": str(path.path), "error": path.error}
    try:
        result = predict_image_file(path, _worker["weights"], _worker["info"], _worker["top_k"])
    except ImageError as error:
        return {"path": str(path), "error": str(error)}
    name = f"{number:04d}-{path.stem}.png"
    return {"path": str(path), **kept(result, name, _worker["weights"], _worker["info"].classes, _worker)}


def kept(result: dict, name: str, weights, classes: list[str], folders: dict) -> dict:
    """``result`` without its pixels, which are written, as ``name``, where ``folders`` asks:
    what the model saw into ``save_preprocessed``, its evidence maps into ``explain``."""
    pixels = result.pop("pixels")
    if folders.get("save_preprocessed"):
        save_pixels(pixels, folders["save_preprocessed"] / name)
    if folders.get("explain"):
        from .explain import evidence, save_evidence_figure

        save_evidence_figure(evidence(weights, pixels), classes, folders["explain"] / name)
    return result


RUN_MARKER = "model.json"  # a folder holding one is a run folder, not a folder of images


@dataclass(frozen=True)
class PathError:
    """A path given to predict or read that holds no image to read, and why."""

    path: Path
    error: str


def check_image_paths(paths: Iterable[Path]) -> None:
    """Refuse a run folder given where images are expected (a glob such as runs/* matched two runs)."""
    for path in paths:
        if path.is_dir() and (path / RUN_MARKER).is_file():
            raise ValueError(
                f"{path} is a run folder, not images: give one run, first, as RUN_DIR (runs/latest is the newest)"
            )


def expand_paths(
    paths: Iterable[str | Path], recursive: bool = False, skipped: list[Path] | None = None
) -> Iterator[Path | PathError]:
    """Files as given, and the image files (by suffix) inside any folder, sorted by name.

    A stream: of a folder only its sorted names are held (strings, not a Path per file), so
    a folder of a million images costs tens of megabytes, not hundreds. A folder without
    images yields a PathError. Subfolders are entered with ``recursive`` (symbolic links to
    folders are not followed, so a link loop cannot trap the walk), and otherwise appended to
    ``skipped``.
    """
    for path in map(Path, paths):
        if not path.is_dir():
            yield path
            continue
        found = False
        for file in _images_in(path, recursive, skipped):
            found = True
            yield file
        if not found:
            yield PathError(path, f"no image files in {path}" + (" or its subfolders" if recursive else ""))


def _images_in(folder: Path, recursive: bool, skipped: list[Path] | None) -> Iterator[Path]:
    for name in sorted(os.listdir(folder)):
        entry = folder / name
        if entry.suffix.lower() in IMAGE_SUFFIXES and entry.is_file():
            yield entry
        elif entry.is_dir() and not entry.is_symlink():
            if recursive:
                yield from _images_in(entry, recursive, skipped)
            elif skipped is not None:
                skipped.append(entry)


def save_pixels(pixels, path) -> None:
    """Write what the model saw, (1, 28, 28) or (28, 28) in [0, 1], as an 8-bit 28×28 PNG."""
    values = np.asarray(pixels, dtype=np.float32).reshape(SIDE, SIDE)
    Image.fromarray(np.round(np.clip(values, 0, 1) * 255).astype(np.uint8), mode="L").save(path, format="PNG")
