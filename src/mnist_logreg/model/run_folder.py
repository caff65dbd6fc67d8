"""The run folder: what it holds (one typed definition), writing it, and reading it back.

A run folder holds:

- ``model.pth``: the plain state_dict, so the lesson's ``model.load_state_dict(torch.load(path))`` works;
- ``weights.npz``: the same weight and bias as numpy arrays, so predicting needs no torch;
- ``model.json``: ``RunInfo``, what the weights are and how they were made;
- ``history.json``: one ``Epoch`` per line of training;
- ``metrics.json``: ``Metrics``, the scores at the end, confusion matrix and per-class table included;
- the report's figures and ``report.html``, when one was written (``report/write.py``).

Every consumer reads a run through ``read_info``, ``read_history``, ``read_metrics`` and
``load_run``. model.json says its ``format_version``; a file of an older layout is read through
``upgrade_info``, which fills in only what that layout implies.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import pickle
import zipfile
from dataclasses import asdict, dataclass, field, fields
from importlib import metadata
from pathlib import Path

import numpy as np

from ..data.catalog import DATASETS
from ..errors import RunError
from ..files import written_atomically
from ..images.inputs import INPUT_SIZE, check_features, check_input_transform
from ..images.layout import Layout

MODEL_FILE = "model.pth"
WEIGHTS_FILE = "weights.npz"
INFO_FILE = "model.json"
HISTORY_FILE = "history.json"
METRICS_FILE = "metrics.json"

# TrainConfig settings that model.json records outside ``hyperparameters``: the model's own
# fields, and the validation split's size among the split sizes.
RECORDED_ELSEWHERE = ("input_transform", "features", "reject", "pens", "val_size")
# How images become model inputs: recorded in model.json for whoever feeds the model elsewhere.
PIXEL_SCALE = "uint8 / 255 as ToTensor computes it: light ink on black, pixels in [0, 1]"
# model.json's layout. 1: every run folder written before the number was (no "format_version");
# 2: each setting written once, in its own field. Older layouts are read through upgrade_info.
FORMAT_VERSION = 2


@dataclass
class RunInfo:
    """model.json: what a run's model is and how it was made."""

    dataset: str
    classes: list[str]
    layout: Layout  # how preprocess_image places an image in 28×28 for this model
    input_size: int = INPUT_SIZE
    input_transform: str = "none"  # one of config.INPUT_TRANSFORMS, applied by the model itself
    features: str = "pixels"  # one of config.FEATURES: what the linear layer weighs (images/inputs.py)
    temperature: float = 1.0  # every probability is softmax(logits / temperature) (model/calibration.py); 1 before it
    # A run with the class "not a digit" (data/outliers.py): {"class", "threshold", "accept_rate",
    # "outliers": {source: count}}; its output comes after the classes'. None: no reject class.
    reject: dict | None = None
    # A run that trained on copies of its digits redrawn with other pens (data/pens.py): {"copies_per_digit",
    # "shares": {pen: share}, "counts": {pen: copies}, "parameters": {pen: the values drawn from}}.
    # None: it trained on the dataset's own strokes only.
    pens: dict | None = None
    # A run trained on a folder of one's own images (data/folders.py): {"folder", "layout", "test",
    # "cache", "files" (folder_images.files_digest), "unreadable", "unreadable_files"}. None: a
    # dataset of the table.
    source: dict | None = None
    # A run tuned on one writer's images (``mnist-logreg tune``, train/tune.py): {"run" it started from,
    # "model_json_sha256" of that run's model.json, "writer": the images' folder, files digest and
    # counts, the settings, and the scores "before" and "after"}. None: trained from the start.
    tuned_from: dict | None = None
    preset: str = "custom"
    # Where a small training split took a smaller batch than its preset's (config.with_enough_steps):
    # {"min_steps_per_epoch", "preset_batch_size", "batch_size"}. None: the batch was the preset's or the flag's.
    batch_rule: dict | None = None
    # The rest of TrainConfig.to_dict(), seed included: what is recorded above (input_transform,
    # features, reject, pens) or in ``splits`` (val_size) is not written twice (``recipe`` has it all).
    hyperparameters: dict = field(default_factory=dict)
    splits: dict[str, int] = field(default_factory=dict)  # {"train": n, "val": n, "test": n}
    pixel_scale: str = PIXEL_SCALE
    loader: str = ""
    device: str = ""
    world_size: int = 1  # processes that trained it together (torchrun); 1 for runs from before it
    versions: dict[str, str] = field(default_factory=dict)
    created: str | None = None  # when training finished, ISO 8601; None where a file did not say
    format_version: int = FORMAT_VERSION

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def hyperparameters_of(cls, settings: dict) -> dict:
        """``TrainConfig.to_dict()`` less what model.json records elsewhere."""
        return {name: value for name, value in settings.items() if name not in RECORDED_ELSEWHERE}

    @property
    def recipe(self) -> dict:
        """Every setting the run was trained with (TrainConfig's names), from where each is recorded."""
        return {
            **self.hyperparameters,
            "val_size": self.splits.get("val"),
            "input_transform": self.input_transform,
            "features": self.features,
            "reject": self.reject is not None,
            "pens": self.pens is not None,
        }

    @property
    def seed(self) -> int | None:
        """The seed of the split, the initial weights and the shuffling (None for runs from before it)."""
        return self.hyperparameters.get("seed")

    @classmethod
    def from_json(cls, value, path: Path | str = INFO_FILE) -> RunInfo:
        """Check and read a model.json, of this layout or (through ``upgrade_info``) an older one."""
        if not isinstance(value, dict) or not {"dataset", "classes", "input_size"} <= set(value):
            raise RunError(f"{path} does not describe a model (no dataset, classes or input_size)")
        values = upgrade_info(value, path)
        if not (isinstance(values["classes"], list) and all(isinstance(c, str) for c in values["classes"])):
            raise RunError(f"{path}: 'classes' must be a list of names")
        if not (isinstance(values["input_size"], int) and values["input_size"] > 0):
            raise RunError(f"{path}: 'input_size' must be a positive integer")
        temperature = values.get("temperature", 1.0)
        if not (isinstance(temperature, (int, float)) and math.isfinite(temperature) and temperature > 0):
            raise RunError(f"{path}: 'temperature' must be a positive number")
        reject = values.get("reject")
        if reject is not None and not (isinstance(reject, dict) and isinstance(reject.get("threshold"), (int, float))):
            raise RunError(f"{path}: 'reject' must be null or an object with a numeric 'threshold'")
        try:
            check_input_transform(values.get("input_transform", "none"))
            check_features(values.get("features", "pixels"))
        except ValueError as error:
            raise RunError(f"{path}: {error}; is it from a newer mnist-logreg?") from None
        if "layout" not in values:
            raise RunError(
                f"{path} names dataset {values['dataset']!r}, which is not one of {sorted(DATASETS)}, "
                'and gives no \'layout\'; add one, e.g. "layout": {"box": 20, "centre_of_mass": true}'
            )
        try:
            values["layout"] = Layout(**values["layout"])
        except TypeError:
            raise RunError(f"{path}: 'layout' must be {{'box': int, 'centre_of_mass': bool}}") from None
        return cls(**values)

    @property
    def outputs(self) -> int:
        """The model's outputs: one per class, and one more for "not a digit" when it rejects."""
        return len(self.classes) + (self.reject is not None)

    @property
    def threshold(self) -> float | None:
        """The run's own reject threshold (None: it accepts every image)."""
        return self.reject["threshold"] if self.reject is not None else None


def upgrade_info(value: dict, path: Path | str = INFO_FILE) -> dict:
    """A model.json of any layout as the fields of this one. It fills in only what an older
    layout implies: a run of a table dataset from before ``layout`` was written placed images as
    its dataset does, and the seed a format-1 file kept at the top is the one it trained with.
    What a file does not say stays missing (``created`` among them); unknown keys of old files
    (``input_normalisation``) are dropped, and settings copied into ``hyperparameters`` are read
    where they are recorded now."""
    version = value.get("format_version", 1)
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise RunError(
            f"{path} has format_version {version!r}; this mnist-logreg reads up to {FORMAT_VERSION}: upgrade it"
        )
    known = {f.name for f in fields(RunInfo)}
    values = {k: v for k, v in value.items() if k in known}
    hyperparameters = values.get("hyperparameters")
    values["hyperparameters"] = RunInfo.hyperparameters_of(hyperparameters if isinstance(hyperparameters, dict) else {})
    if version == 1:
        if value.get("seed") is not None:
            values["hyperparameters"].setdefault("seed", value["seed"])
        if "layout" not in values and values["dataset"] in DATASETS:
            values["layout"] = asdict(DATASETS[values["dataset"]].layout)
    values["format_version"] = FORMAT_VERSION
    return values


@dataclass
class Epoch:
    """One line of history.json."""

    epoch: int  # from 1
    train_loss: float | None  # None where the loss was not finite
    val_loss: float | None
    val_acc: float
    seconds: float  # the epoch's wall time, validation included


@dataclass
class Metrics:
    """metrics.json: the run's scores once training ended."""

    test_acc: float
    test_loss: float | None
    val_acc: float
    val_loss: float | None
    train_seconds: float  # training and validation, without start-up, data loading or the report
    confusion: list[list[int]] | None = None  # test set, rows = true class (None: runs from before it)
    per_class: list[dict] | None = None  # precision, recall, f1, support per class
    # {"ece_before", "ece_after"}: on the test split, before and after the temperature in model.json
    # (None: runs from before it)
    calibration: dict | None = None
    # A run with a reject class: the shares of validation and test digits its threshold (in model.json)
    # accepts ("val_accepted", "test_accepted"), and the accuracy on those test digits ("test_acc_accepted").
    reject: dict | None = None
    interrupted: bool = False  # stopped by Ctrl-C: the weights are those of the last complete epoch
    epochs_completed: int | None = None

    def to_json(self) -> dict:
        value = clean_floats(asdict(self))
        if not self.interrupted:  # a finished run says nothing about interruption
            del value["interrupted"], value["epochs_completed"]
        if self.reject is None:
            del value["reject"]
        return value

    @classmethod
    def from_json(cls, value, path: Path | str = METRICS_FILE) -> Metrics:
        required = {"test_acc", "test_loss", "val_acc", "val_loss", "train_seconds"}
        if not isinstance(value, dict) or not required <= set(value):
            raise RunError(f"{path} does not hold a run's metrics (needs {sorted(required)})")
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in value.items() if k in known})


def package_version() -> str:
    try:
        return metadata.version("mnist-logreg")
    except metadata.PackageNotFoundError:
        return "unknown"


def write_json(path: Path, value) -> None:
    """Write JSON atomically: a crash mid-write never leaves a half-written file behind."""
    with written_atomically(path) as partial:
        partial.write_text(json.dumps(value, indent=2, allow_nan=False) + "\n")


def read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise RunError(f"{path} is missing; is {path.parent} a folder written by 'mnist-logreg train'?") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise RunError(f"{path} is not valid JSON ({error})") from None


def read_info(run_dir: Path | str) -> RunInfo:
    path = Path(run_dir) / INFO_FILE
    return RunInfo.from_json(read_json(path), path)


def read_history(run_dir: Path | str) -> list[Epoch]:
    path = Path(run_dir) / HISTORY_FILE
    rows = read_json(path)
    try:
        return [Epoch(**row) for row in rows]
    except TypeError:
        raise RunError(f"{path} is not a list of epochs ({[f.name for f in fields(Epoch)]})") from None


def read_metrics(run_dir: Path | str) -> Metrics:
    path = Path(run_dir) / METRICS_FILE
    return Metrics.from_json(read_json(path), path)


def save_model(run_dir: Path | str, model, info: RunInfo | dict) -> None:
    """Write the weights (model.pth and weights.npz) and model.json, each atomically."""
    import torch

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    state = {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()}
    with written_atomically(run_dir / MODEL_FILE) as partial:
        torch.save(state, partial)
    with written_atomically(run_dir / WEIGHTS_FILE) as partial, partial.open("wb") as handle:
        # a file object: np.savez would add ".npz" to a path
        np.savez(handle, weight=state["linear.weight"].numpy(), bias=state["linear.bias"].numpy())
    write_json(run_dir / INFO_FILE, info.to_json() if isinstance(info, RunInfo) else info)


def write_run(run_dir: Path | str, model, info: RunInfo, history: list[Epoch], metrics: Metrics) -> None:
    """Write a whole run folder: weights, model.json, history.json and metrics.json."""
    save_model(run_dir, model, info)
    write_json(Path(run_dir) / HISTORY_FILE, clean_floats([asdict(epoch) for epoch in history]))
    write_json(Path(run_dir) / METRICS_FILE, metrics.to_json())


def checked_run_dir(run_dir: Path | str) -> Path:
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunError(f"no run folder at {run_dir}; run 'mnist-logreg train' first")
    if not (run_dir / MODEL_FILE).is_file():
        raise RunError(f"no checkpoint at {run_dir / MODEL_FILE}; run 'mnist-logreg train' first")
    return run_dir


def real_run_dir(run_dir: Path | str) -> Path:
    """The folder a run path names, links resolved: ``runs/latest`` is ``runs/mnist-default-...``.

    A link moves when another run is trained; what a report, a comparison or an evaluation
    names must not. Relative to the current folder where the run lies below it.
    """
    path = Path(run_dir)
    if not any(part.is_symlink() for part in (path, *path.parents)):
        return path
    real = Path(os.path.realpath(path))
    return real.relative_to(Path.cwd()) if real.is_relative_to(Path.cwd()) else real


def info_digest(run_dir: Path | str) -> str:
    """The sha256 of a run's model.json: what a tuned run records of the run it was tuned from."""
    return hashlib.sha256((Path(run_dir) / INFO_FILE).read_bytes()).hexdigest()


def load_run(run_dir: Path | str, device="cpu"):
    """The model of a run folder, in eval mode, and its ``RunInfo``. Raises RunError with the fix.

    The model applies the run's input transform itself: give it 28×28 pixels in [0, 1], as the
    dataset or ``preprocess_image`` provide them.
    """
    import torch

    from .lesson import MNISTModel

    run_dir = checked_run_dir(run_dir)
    checkpoint = run_dir / MODEL_FILE
    info = read_info(run_dir)
    try:
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, zipfile.BadZipFile, EOFError, ValueError) as error:
        raise RunError(f"{checkpoint} is not a readable checkpoint ({str(error).splitlines()[0]})") from None
    if not isinstance(state, dict):
        raise RunError(f"{checkpoint} does not hold a state_dict")
    model = MNISTModel(info.input_size, len(info.classes), info.input_transform, info.features, info.reject is not None)
    model.temperature, model.threshold = info.temperature, info.threshold
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
