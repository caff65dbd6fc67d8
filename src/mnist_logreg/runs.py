"""Run folders: a trained model with everything needed to use, judge and reproduce it.

A run folder holds ``model.pth`` (the plain state_dict, so the lesson's
``model.load_state_dict(torch.load(path))`` works), ``model.json`` (what the weights are and
how they were made), ``history.json`` (one object per epoch) and ``metrics.json``.
"""

from __future__ import annotations

import json
import math
import pickle
import zipfile
from importlib import metadata
from pathlib import Path

import torch

from .model import MNISTModel
from .preprocess import input_transform_of

MODEL_FILE = "model.pth"
INFO_FILE = "model.json"
HISTORY_FILE = "history.json"
METRICS_FILE = "metrics.json"

# How images become model inputs. Stored in model.json so every consumer normalises alike.
PIXEL_NORMALISATION = {"transform": "ToTensor", "scale": "uint8 / 255, pixels in [0, 1]", "mean": 0.0, "std": 1.0}


class RunError(Exception):
    """A run folder is missing, incomplete or does not hold a usable model."""


def package_version() -> str:
    try:
        return metadata.version("mnist-logreg")
    except metadata.PackageNotFoundError:
        return "unknown"


def write_json(path: Path, value) -> None:
    """Write JSON atomically: a crash mid-write never leaves a half-written file behind."""
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(value, indent=2, allow_nan=False) + "\n")
    partial.replace(path)


def read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise RunError(f"{path} is missing; is {path.parent} a folder written by 'mnist-logreg train'?") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise RunError(f"{path} is not valid JSON ({error})") from None


def save_model(run_dir: Path, model: MNISTModel, info: dict) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    state = {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()}
    partial = run_dir / f".{MODEL_FILE}.partial"
    torch.save(state, partial)
    partial.replace(run_dir / MODEL_FILE)
    write_json(run_dir / INFO_FILE, info)


def load_run(run_dir: Path | str, device: torch.device | str = "cpu") -> tuple[MNISTModel, dict]:
    """The model of a run folder, in eval mode, and its ``model.json``. Raises RunError with the fix.

    The model applies the run's input transform itself: give it 28×28 pixels in [0, 1], as the
    dataset or ``preprocess_image`` provide them.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunError(f"no run folder at {run_dir}; run 'mnist-logreg train' first")
    checkpoint = run_dir / MODEL_FILE
    if not checkpoint.is_file():
        raise RunError(f"no checkpoint at {checkpoint}; run 'mnist-logreg train' first")
    info = read_json(run_dir / INFO_FILE)
    if not isinstance(info, dict) or "input_size" not in info or "classes" not in info:
        raise RunError(f"{run_dir / INFO_FILE} does not describe a model (no input_size or classes)")
    try:
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, zipfile.BadZipFile, EOFError, ValueError) as error:
        raise RunError(f"{checkpoint} is not a readable checkpoint ({str(error).splitlines()[0]})") from None
    try:
        input_transform = input_transform_of(info)
    except ValueError as error:
        raise RunError(f"{run_dir / INFO_FILE}: {error}; is it from a newer mnist-logreg?") from None
    model = MNISTModel(info["input_size"], len(info["classes"]), input_transform)
    if not isinstance(state, dict):
        raise RunError(f"{checkpoint} does not hold a state_dict")
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        detail = " ".join(str(error).split())
        raise RunError(f"{checkpoint} does not match the model in {INFO_FILE}: {detail}") from None
    if not all(torch.isfinite(t).all() for t in state.values()):
        raise RunError(f"{checkpoint} holds non-finite weights (NaN or inf); retrain with a smaller --lr")
    return model.to(device).eval(), info


def clean_floats(value):
    """JSON has no NaN or inf: store them as null rather than writing invalid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: clean_floats(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clean_floats(v) for v in value]
    return value
