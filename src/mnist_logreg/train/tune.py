"""A run taught one writer's hand (``mnist-logreg tune``): a copy of the run, moved towards a folder
of the writer's labelled images and held near what it knew, recalibrated, and written as a complete
run folder that records what it was tuned from. The run it started from is never changed.

Each step mixes the writer's training images with a replay sample of the run's own training
digits, and pulls the weights towards the run's (an L2 penalty on the difference): the replay keeps
the digits the writer did not show, the pull keeps what no image of the step speaks for, "not a
digit" above all. The temperature and the threshold are fitted again on the run's validation
split, joined by the writer's training images when there are TUNE_CALIBRATION_MIN of them or more.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..config import RUNS_DIR, TrainConfig, TuneSettings
from ..data.catalog import DEFAULT_DATA_DIR
from ..data.folder_images import read_folder
from ..data.folders import FolderDataset, open_folder
from ..data.loaders import EpochSample, TensorLoader, to_float_pixels
from ..data.prepared import DEFAULT_MAKING
from ..data.splits import Splits, run_splits
from ..errors import RunError, SettingError
from ..images.layout import FOLDER_LAYOUTS
from ..model.calibration import accepted, softmax
from ..model.lesson import MNISTModel
from ..model.metrics import logits_and_labels
from ..model.run_folder import (
    INFO_FILE,
    Metrics,
    RunInfo,
    load_run,
    package_version,
    read_history,
    real_run_dir,
    write_run,
)
from .loop import evaluate
from .run import score_run, with_extras


@dataclass
class Writer:
    """One writer's images, placed as the run places images, labelled with the run's class indices."""

    folder: FolderDataset
    train_images: torch.Tensor  # (N, 28, 28) uint8: what the run learns from
    train_labels: torch.Tensor  # (N,) int64
    test_images: torch.Tensor  # (M, 28, 28) uint8: held out, for the before/after score
    test_labels: torch.Tensor
    record: dict  # what model.json keeps of them


@dataclass
class TuneResult:
    run_dir: Path
    before: dict  # {"writer": {...}, "test": {...}}: the run's scores before tuning
    after: dict
    seconds: float


def tune_run(
    run_dir: Path | str,
    writer_folder: Path | str,
    *,
    out: Path | str | None = None,
    data_dir: Path | str = DEFAULT_DATA_DIR,
    settings: TuneSettings = TuneSettings(),
    log=print,
) -> TuneResult:
    """Fine-tune a copy of the run at ``run_dir`` on the labelled images of ``writer_folder`` (the
    ``train --dataset FOLDER`` layout, class names the run's), and write it to ``out``."""
    start = time.perf_counter()
    model, info = load_run(run_dir)
    source = real_run_dir(run_dir)
    out = Path(out) if out is not None else RUNS_DIR / f"{source.name}-tuned-{datetime.now():%Y%m%d-%H%M%S}"
    if out.resolve() == source.resolve():
        raise SettingError(
            f"--out {out} is the run itself: tune writes a new run and never changes the one it starts from"
        )
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise RunError(f"{out} already holds something: tune writes a new run; choose another --out")
    writer = read_writer(writer_folder, info, log)
    splits = run_splits(info, data_dir)
    before = _scores(model, info, writer, splits)
    log(f"tuning on {len(writer.train_labels)} images of {writer.folder.path} ...")
    _fit_writer(model, writer, replay_pool(info, splits, data_dir, settings.seed, log), settings)
    scores = _recalibrate(model, info, writer, splits, settings)
    after = {
        "writer": _read(model, info, writer.test_images.unsqueeze(1), writer.test_labels),
        "test": _test(scores, splits.size("test")),
    }
    tuned = _tuned_info(info, model, source, writer, settings)
    tuned.tuned_from |= {"before": before, "after": after}
    seconds = time.perf_counter() - start
    write_run(out, model, tuned, read_history(source), _metrics(model, scores, splits, seconds))
    return TuneResult(out, before, after, seconds)


def read_writer(writer_folder: Path | str, info: RunInfo, log=print) -> Writer:
    """The writer's images, as the run reads images: refused where the run cannot be tuned on them."""
    layout = next((name for name, layout in FOLDER_LAYOUTS.items() if layout == info.layout), None)
    if layout is None:
        raise SettingError(
            f"this run places images as {info.dataset} does ({info.layout}), which no folder layout does: "
            f"tune works on runs whose images are placed as {sorted(FOLDER_LAYOUTS)} place them"
        )
    folder = open_folder(writer_folder, layout=layout, log=log)
    unknown = [name for name in folder.classes if name not in info.classes]
    if unknown:
        raise SettingError(
            f"{folder.path} has classes {unknown} that the run does not know; its classes are {info.classes}"
        )
    arrays = read_folder(folder, log=log)
    index = np.array([info.classes.index(name) for name in folder.classes])
    return Writer(
        folder,
        torch.from_numpy(np.ascontiguousarray(arrays.train_images)),
        torch.from_numpy(index[arrays.train_labels]),
        torch.from_numpy(np.ascontiguousarray(arrays.test_images)),
        torch.from_numpy(index[arrays.test_labels]),
        {
            "folder": str(folder.path),
            "files": arrays.files,
            "train": len(arrays.train_labels),
            "held_out": len(arrays.test_labels),
            "classes": list(folder.classes),
        },
    )


def replay_pool(info: RunInfo, splits: Splits, data_dir: Path | str, seed: int, log=print):
    """What the run trained on, to replay: its training images and labels (the digits, and the pen
    copies and outliers of "not a digit" it trained on beside them), and one epoch's order of them,
    drawn as training drew its epochs (loaders.EpochSample)."""
    recipe = {name: value for name, value in info.recipe.items() if name in TrainConfig.__dataclass_fields__}
    config = TrainConfig(**recipe)
    splits, _, _ = with_extras(splits, config, data_dir, replace(DEFAULT_MAKING, log=log))
    images, labels = splits.tensors("train")
    generator = torch.Generator().manual_seed(seed)
    groups = splits.epoch_groups()
    if groups is None:
        return images, labels, torch.randperm(len(labels), generator=generator)
    return images, labels, EpochSample(splits.size("train"), groups, generator).order()


def _fit_writer(model: MNISTModel, writer: Writer, replay, settings: TuneSettings) -> None:
    """Full-batch steps on the writer's images, each with the next images of the replay's epoch, and the
    weights pulled towards where they started."""
    images, labels, order = replay
    with torch.no_grad():
        inputs = model.seen(to_float_pixels(writer.train_images))
    anchor = [p.detach().clone() for p in model.linear.parameters()]
    optimizer = torch.optim.SGD(model.linear.parameters(), lr=settings.lr)
    replayed = settings.replay * len(writer.train_labels)
    model.train()
    for step in range(settings.steps):
        loss = F.cross_entropy(model.linear(inputs), writer.train_labels)
        if replayed:
            chosen = order[
                torch.arange(step * replayed, (step + 1) * replayed) % len(order)
            ]  # round again when used up
            with torch.no_grad():
                seen = model.seen(to_float_pixels(images[chosen]))
            loss = loss + F.cross_entropy(model.linear(seen), labels[chosen])
        pull = sum(((p - p0) ** 2).sum() for p, p0 in zip(model.linear.parameters(), anchor, strict=True))
        optimizer.zero_grad(set_to_none=True)
        (loss + settings.anchor * pull).backward()
        optimizer.step()
    model.eval()


def _recalibrate(model: MNISTModel, info: RunInfo, writer: Writer, splits: Splits, settings: TuneSettings) -> dict:
    """The temperature and the threshold fitted again, on the run's validation split and, when there
    are enough of them, the writer's training images; and the scores on the run's test split."""
    images, labels = splits.tensors("val")
    if len(writer.train_labels) >= settings.calibration_min:
        images = torch.cat([images, writer.train_images.unsqueeze(1)])
        labels = torch.cat([labels, writer.train_labels])
    test = splits.tensors("test")
    scores = score_run(
        model, TensorLoader(images, labels, 1000), TensorLoader(*test, 1000), info.classes, info.reject is not None
    )
    model.temperature, model.threshold = scores.pop("temperature"), scores.pop("threshold")
    return scores


def _scores(model: MNISTModel, info: RunInfo, writer: Writer, splits: Splits) -> dict:
    """How the run reads the writer's held-out images and its own test split: the likeliest class
    right (``acc``) and the share it accepts by its own rule (``accepted``)."""
    test_images, test_labels = splits.tensors("test")
    return {
        "writer": _read(model, info, writer.test_images.unsqueeze(1), writer.test_labels),
        "test": _read(model, info, test_images, test_labels),
    }


def _read(model: MNISTModel, info: RunInfo, images: torch.Tensor, labels: torch.Tensor) -> dict:
    if not len(labels):
        return {"images": 0, "acc": None, "accepted": None}
    logits, labels = logits_and_labels(model, TensorLoader(images, labels, 1000))
    probabilities = softmax(logits, model.temperature)
    classes = len(info.classes)
    return {
        "images": len(labels),
        "acc": float(np.mean(probabilities[:, :classes].argmax(1) == labels)),
        "accepted": float(accepted(probabilities, classes, model.threshold).mean()),
    }


def _test(scores: dict, images: int) -> dict:
    """``_read``'s figures of the test split, from what ``score_run`` measured of it after tuning."""
    taken = scores["reject"]["test_accepted"] if "reject" in scores else 1.0  # no reject class: all taken
    return {"images": images, "acc": scores["test_acc"], "accepted": taken}


def _tuned_info(info: RunInfo, model: MNISTModel, source: Path, writer: Writer, settings: TuneSettings) -> RunInfo:
    """The run's model.json, recalibrated, saying what it was tuned from and on which images."""
    digest = hashlib.sha256((source / INFO_FILE).read_bytes()).hexdigest()
    reject = None if info.reject is None else info.reject | {"threshold": model.threshold}
    return replace(
        info,
        temperature=model.temperature,
        reject=reject,
        tuned_from={"run": str(source), "model_json_sha256": digest, "writer": writer.record, **settings.to_json()},
        versions={"mnist_logreg": package_version(), "torch": torch.__version__},
        created=datetime.now().isoformat(timespec="seconds"),
    )


def _metrics(model: MNISTModel, scores: dict, splits: Splits, seconds: float) -> Metrics:
    val = evaluate(model, TensorLoader(*splits.tensors("val"), 1000))
    return Metrics(
        test_acc=scores.pop("test_acc"),
        test_loss=scores.pop("test_loss"),
        val_acc=val["val_acc"],
        val_loss=val["val_loss"],
        train_seconds=seconds,
        **scores,
    )
