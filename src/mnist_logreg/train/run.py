"""Whole jobs, built from the modules below them: train a run and write its folder; evaluate a saved run."""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..config import (
    ACCEPT_RATE,
    COPIES_PER_EPOCH,
    DEVICES,
    LOADERS,
    OUTLIERS_PER_EPOCH,
    REJECT_CLASS,
    REJECT_LOSS_WEIGHT,
    RUNS_DIR,
    SCORED_SPLITS,
    SPLITS,
    TrainConfig,
    with_enough_steps,
)
from ..data.catalog import DATASETS, DEFAULT_DATA_DIR, DatasetSpec, get_spec
from ..data.folders import FolderDataset
from ..data.loaders import TensorLoader, dataloaders, shard_batches, tensor_loaders
from ..data.outliers import training_outliers
from ..data.pens import pens_record, training_copies
from ..data.prepared import DEFAULT_MAKING, Making
from ..data.splits import Splits, folder_splits, load_splits, run_splits
from ..errors import RunError, SettingError, UsageError
from ..files import written_atomically
from ..model.calibration import (
    accepted,
    choose_threshold,
    digit_scores,
    expected_calibration_error,
    fit_temperature,
    softmax,
)
from ..model.lesson import INPUT_SIZE, MNISTModel, reject_class_weight
from ..model.metrics import confusion_matrix, logits_and_labels, per_class_metrics
from ..model.run_folder import INFO_FILE, Epoch, Metrics, RunInfo, load_run, package_version, real_run_dir, write_run
from . import distributed
from .loop import NonFiniteLoss, evaluate, fit_config


def resolve_device(device: str) -> torch.device:
    if device not in DEVICES:
        raise SettingError(f"device={device!r} is not one of {list(DEVICES)}")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise UsageError("argument --device: cuda was asked for, but torch sees no CUDA device; use --device cpu")
    return torch.device(device)


def make_loaders(
    splits: Splits,
    batch_size: int,
    seed: int,
    loader: str,
    device: torch.device,
    *,
    input_transform: str = "none",
    processes: distributed.Processes = distributed.SINGLE,
    progress: bool = False,
    keep_in: Path | str | None = None,
    log: Callable[[str], None] = lambda message: None,
):
    """Train, validation and test loaders that yield images with ``input_transform`` already applied
    (in memory, under a progress bar with ``progress``; the training split kept in the data folder
    ``keep_in`` for the next run, and ``log`` told what is done: loaders.tensor_loaders).

    In data-parallel training the train loader gives this process its shard of every batch.
    """
    if loader == "memory":
        loaders = tensor_loaders(splits, batch_size, seed, input_transform, progress, keep_in=keep_in, log=log)
        train, val, test = (each.to(device) for each in loaders)
    elif loader == "dataloader":
        train, val, test = dataloaders(splits, batch_size, seed, input_transform)
    else:
        raise SettingError(f"loader={loader!r} is not one of {list(LOADERS)}")
    return shard_batches(train, processes.rank, processes.world_size), val, test


def default_run_dir(dataset: str, preset: str) -> Path:
    return RUNS_DIR / f"{dataset}-{preset}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


class TrainingInterrupted(Exception):
    """Training was stopped (Ctrl-C) and what was complete has been saved; the message says where."""


LATEST = "latest"  # beside the runs it points to: runs/latest is the run `train` wrote last


def prepare_run_dir(run_dir: Path, overwrite: bool) -> None:
    """Refuse to write into a folder that holds something, unless ``overwrite``: then empty it first,
    so that the folder holds the new run alone, never the new model beside the old report."""
    if not run_dir.exists():
        return
    if not run_dir.is_dir():
        raise RunError(f"{run_dir} is a file, not a run folder")
    entries = list(run_dir.iterdir())
    if not entries:
        return
    if not overwrite:
        raise RunError(f"{run_dir} already holds a run; choose another --out, or give --overwrite to replace it")
    if not any((run_dir / name).exists() for name in (INFO_FILE, RESUME_FILE)):
        raise RunError(f"{run_dir} is not a run folder (no {INFO_FILE}); --overwrite replaces runs only")
    for entry in entries:
        shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()


def point_latest_at(run_dir: Path) -> Path | None:
    """Make ``latest`` beside ``run_dir`` a link to it (replaced in one step, never missing), and
    return the link. Only in a runs folder (one named as RUNS_DIR is): a run written anywhere
    else, ``--out ../scratch/run-1`` say, leaves that folder as it was and returns None."""
    link = run_dir.parent / LATEST
    if run_dir.parent.name != RUNS_DIR.name or (link.exists() and not link.is_symlink()):
        return None  # not a runs folder, or a folder of the user's own called "latest": leave it be
    staged = run_dir.parent / f".{LATEST}.{os.getpid()}"
    staged.unlink(missing_ok=True)
    staged.symlink_to(run_dir.name, target_is_directory=True)
    staged.replace(link)
    return link


class TrainingDiverged(RunError):
    """A loss was not finite: the learning rate is too large. The message says what was kept."""


@dataclass
class RunResult:
    run_dir: Path
    model: MNISTModel
    history: list[Epoch]
    metrics: Metrics
    info: RunInfo
    splits: Splits
    latest: Path | None = None  # the link to this run beside it, where one was made


RESUME_FILE = "resume.pt"  # in a run folder only while its training is unfinished


def train_run(
    dataset: str | DatasetSpec,
    config: TrainConfig,
    *,
    preset: str = "custom",
    data_dir: Path | str = DEFAULT_DATA_DIR,
    run_dir: Path | str | None = None,
    device: str = "auto",
    loader: str = "memory",
    progress: bool = False,
    verbose: bool = True,
    log: Callable[[str], None] = print,
    overwrite: bool = False,
    min_steps_per_epoch: int | None = None,
    cache: bool = True,
    workers: int = 1,
) -> RunResult:
    """Train ``config`` on ``dataset`` and write a complete run folder. Fetches data if missing.

    ``run_dir`` must not hold anything yet, unless ``overwrite``: then what it held is removed.
    Once written, ``latest`` beside it points to it. With ``min_steps_per_epoch``, a training split
    too small for the batch to give that many optimizer steps an epoch trains in smaller batches
    (``config.with_enough_steps``; the command line asks for it unless --batch-size is given).
    ``cache`` keeps the outliers of a reject class, the pen copies and the input-transformed training
    split in the data folder for the next run, and reads them from there (outliers.training_outliers,
    pens.training_copies, loaders.held_training_split). Where they are not kept yet, ``workers`` processes
    make them and the pen copies (fresh ones, spawned: a script that calls this with more than one
    needs Python's ``if __name__ == "__main__":`` guard); the same images however many.

    Started by torchrun in several processes, they train the model together, data-parallel
    (see train/distributed.py); rank 0 writes the run folder, and model.json records the world size.

    Each complete epoch is checkpointed atomically in the run folder (``resume.pt``: weights,
    optimizer, history and the shuffling's random state), so a run stopped in any way, a
    SIGKILL included, continues with ``resume_run`` to the weights an uninterrupted run ends
    on. Interrupted (Ctrl-C), it also saves the epochs completed so far as a run, marked
    ``interrupted`` in metrics.json, and raises TrainingInterrupted saying where.
    """
    spec = dataset if isinstance(dataset, FolderDataset) else get_spec(dataset)
    run_dir = Path(run_dir) if run_dir is not None else default_run_dir(spec.name, preset)
    if run_dir.is_symlink():  # runs/latest itself: write where it points, and keep the link a link
        run_dir = Path(os.path.realpath(run_dir))
    if config.reject and spec.classes != DATASETS["mnist"].classes:
        raise UsageError(f"--reject learns 'not a digit', and {spec.name}'s classes are not the digits 0-9")
    if config.pens and (isinstance(spec, FolderDataset) or spec.classes != DATASETS["mnist"].classes):
        raise UsageError(f"--pens redraws MNIST's digits with other pens, and {spec.name} is not MNIST")
    resolve_device(device)  # a device this machine lacks is refused before the run folder is touched
    if distributed.launched().is_main:
        prepare_run_dir(run_dir, overwrite)
    start = {"dataset": spec.name, "config": config.to_dict(), "preset": preset, "loader": loader, "device": device}
    start["min_steps_per_epoch"] = min_steps_per_epoch
    start["cache"] = cache
    start["workers"] = workers  # not kept in the checkpoint: how to make the images, not what they are
    if isinstance(spec, FolderDataset):
        start["source"] = spec.to_json()  # where a resumed run reads its images again
    return _train(spec, config, start, RunContext(run_dir, data_dir, progress, verbose, log))


def resume_run(
    run_dir: Path | str,
    *,
    data_dir: Path | str = DEFAULT_DATA_DIR,
    dataset: DatasetSpec | None = None,
    progress: bool = False,
    verbose: bool = True,
    log: Callable[[str], None] = print,
    workers: int = 1,
) -> RunResult:
    """Continue an unfinished run from its last complete epoch, with the settings it started with.

    ``dataset`` is for datasets outside the table (the checkpoint names the dataset); ``workers`` is
    ``train_run``'s.
    """
    run_dir = Path(run_dir)
    path = run_dir / RESUME_FILE
    if not run_dir.is_dir():
        raise RunError(f"no run folder at {run_dir} to resume")
    if not path.is_file():
        finished = (run_dir / "metrics.json").is_file()
        raise RunError(
            f"{run_dir} has no {RESUME_FILE}: "
            + ("the run is finished" if finished else "it is not an unfinished run folder (no epoch was complete)")
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, ValueError) as error:
        raise RunError(f"{path} is not a readable checkpoint ({str(error).splitlines()[0]})") from None
    config = TrainConfig(**state["config"])
    state["workers"] = workers
    if distributed.launched().is_main:
        log(f"continuing after epoch {len(state['history'])} of {config.epochs} ...")
    if dataset is not None:
        spec = dataset
    elif "source" in state:
        spec = FolderDataset.from_json(state["source"])
    else:
        spec = get_spec(state["dataset"])
    return _train(spec, config, state, RunContext(run_dir, data_dir, progress, verbose, log))


@dataclass
class RunContext:
    """Where a run is written and its data read, and how it speaks while it trains."""

    run_dir: Path
    data_dir: Path | str
    progress: bool  # bars over epochs and over images being made
    verbose: bool  # the lesson's line per epoch
    log: Callable[[str], None]


@dataclass
class Training:
    """A run under way, from its data to its saved folder: what each step of ``_train`` hands on."""

    config: TrainConfig
    state: dict  # the start settings, or a checkpoint (with its ``history``) being continued
    context: RunContext
    device: torch.device
    processes: distributed.Processes
    data: TrainingData
    loaders: tuple  # train, validation, test: their images transformed already
    model: MNISTModel
    checkpoint: Checkpoint


def _train(spec, config: TrainConfig, state: dict, context: RunContext) -> RunResult:
    """Train from ``state`` (a fresh start, or a checkpoint with its ``history`` so far) to the end.

    In data-parallel training (see train/distributed.py) every process runs this; only rank 0 logs,
    keeps the checkpoint and writes the run folder.
    """
    device = resolve_device(state["device"])
    processes = distributed.start(device)  # joins torchrun's group, if torchrun started this process
    if not processes.is_main:
        context = replace(context, log=_quiet)
    shown = context.progress and processes.is_main  # progress bars: from the process that speaks only
    data = _training_data(spec, config, state, context, shown)
    if state.get("min_steps_per_epoch") and "history" not in state:  # a checkpoint holds the batch its run chose
        config = _enough_steps(config, state, data.splits.size("train"), context.log)
    # The loaders apply the input transform once, up front, so the model trains on transformed
    # pixels with the fast closed-form step; the saved model then applies it to each input. One
    # process a machine keeps the transformed split; the others then read it.
    with distributed.each_machine_first():
        loaders = make_loaders(
            data.splits,
            config.batch_size,
            config.seed,
            state["loader"],
            device,
            input_transform=config.input_transform,
            processes=processes,
            progress=shown,
            keep_in=context.data_dir if state.get("cache", True) else None,
            log=context.log,
        )
    model = _new_model(len(spec.classes), config, device)
    checkpoint = Checkpoint(state, context.run_dir, processes.is_main)
    checkpoint.resume(model, loaders[0].generator)
    training = Training(config, state, context, device, processes, data, loaders, model, checkpoint)
    return _fit_to_the_end(training)


def _training_data(spec, config: TrainConfig, state: dict, context: RunContext, shown: bool) -> TrainingData:
    """The splits, with the outliers and pen copies the recipe adds, read once per machine."""
    source = None  # a folder dataset's record in model.json
    with distributed.each_machine_first():  # one download (or decoding) per machine, not one per process
        if isinstance(spec, FolderDataset):
            splits, unreadable = folder_splits(spec, config.val_size, config.seed, shown, context.log)
            source = spec.to_json() | unreadable
        else:
            splits = load_splits(spec, context.data_dir, val_size=config.val_size, seed=config.seed, log=context.log)
        making = Making(
            log=context.log, progress=shown, cache=state.get("cache", True), workers=state.get("workers", 1)
        )
        splits, outlier_counts, pen_counts = with_extras(splits, config, context.data_dir, making)
    return TrainingData(spec, splits, outlier_counts, pen_counts, source)


def _new_model(classes: int, config: TrainConfig, device: torch.device) -> MNISTModel:
    """The untrained model of the recipe, its initial weights drawn from the seed."""
    torch.manual_seed(config.seed)
    # The input transform is the loaders' (applied once) until the run is saved; the feature map
    # is the model's own from the start, computed per batch.
    model = MNISTModel(INPUT_SIZE, classes, features=config.features, reject=config.reject).to(device)
    if config.reject:  # the outliers count for more in the loss than a digit (config.REJECT_LOSS_WEIGHT)
        model.class_weight = reject_class_weight(classes, REJECT_LOSS_WEIGHT).to(device)
    return model


class Checkpoint:
    """What resume.pt holds and when it is written: after every complete epoch, by rank 0, atomically
    (a kill leaves the previous epoch's), with the run's start settings, the history so far, the
    weights, the optimizer's state and where the shuffling is; removed once the run is saved whole."""

    KEPT = ("dataset", "config", "preset", "loader", "device", "batch_rule", "cache")  # the start settings

    def __init__(self, state: dict, run_dir: Path, is_main: bool) -> None:
        self.state, self.path, self.is_main = state, run_dir / RESUME_FILE, is_main
        self.completed: list[dict] = list(state.get("history", []))  # epochs finished so far
        self.last_weights: dict = {}  # the latest complete epoch's

    def resume(self, model: MNISTModel, generator: torch.Generator) -> None:
        """Where the checkpoint has epochs, the weights and the shuffling where the last one left them."""
        if self.completed:
            model.load_state_dict(self.state["model"])
            generator.set_state(self.state["generator"])
        self.model, self.generator = model, generator
        self.last_weights = {k: v.clone() for k, v in model.state_dict().items()}

    def keep(self, result: dict, optimizer) -> None:
        """``fit``'s ``on_epoch_end``: the epoch is complete."""
        self.completed.append(result)
        self.last_weights = {k: v.clone() for k, v in self.model.state_dict().items()}
        if not self.is_main:
            return
        held = {k: self.state[k] for k in self.KEPT if k in self.state}
        held |= {"history": self.completed, "model": {k: v.cpu() for k, v in self.last_weights.items()}}
        held |= {"optimizer": optimizer.state_dict(), "generator": self.generator.get_state()}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with written_atomically(self.path) as partial:
            torch.save(held, partial)

    def back_to_last_epoch(self) -> None:
        """The weights of the last complete epoch, not those of a half-trained or diverged step."""
        self.model.load_state_dict(self.last_weights)

    def remove(self) -> None:
        if self.is_main:
            self.path.unlink(missing_ok=True)


def _fit_to_the_end(training: Training) -> RunResult:
    """Fit, then save the run; a Ctrl-C or a non-finite loss saves the epochs complete so far."""
    config, checkpoint = training.config, training.checkpoint
    options = {"progress": training.context.progress, "verbose": training.context.verbose}
    options["on_epoch_end"] = checkpoint.keep
    if checkpoint.completed:
        options.update(start_epoch=len(checkpoint.completed), optimizer_state=training.state["optimizer"])
    try:
        fit_config(config, training.model, training.loaders[0], training.loaders[1], **options)
    except KeyboardInterrupt:
        raise _stopped(training) from None
    except NonFiniteLoss as diverged:
        raise _stopped(training, diverged=diverged) from None
    result = _save_run(training)
    checkpoint.remove()  # finished: the run folder holds only the run
    return result


def _stopped(training: Training, diverged: NonFiniteLoss | None = None) -> Exception:
    """The error to raise for a Ctrl-C (``diverged`` None) or a diverged loss, once the complete
    epochs are saved as a run."""
    config, checkpoint, run_dir = training.config, training.checkpoint, training.context.run_dir
    done = len(checkpoint.completed)
    if done:
        checkpoint.back_to_last_epoch()
        _save_run(training)
    if diverged is None:
        if not done:
            return TrainingInterrupted("interrupted before the first epoch was complete; nothing was saved")
        return TrainingInterrupted(
            f"interrupted after {done} of {config.epochs} epochs; the run so far is saved in {run_dir}; "
            f"continue it with 'mnist-logreg train --resume {run_dir}'"
        )
    what = f"{diverged} with --lr {config.lr:g}; try a smaller --lr"
    if not done:
        return TrainingDiverged(f"{what}; no epoch was complete, so nothing was saved")
    checkpoint.remove()  # resuming would only diverge again
    return TrainingDiverged(f"{what}; the {done} epoch(s) before it are saved in {run_dir}, marked interrupted")


def _quiet(message: str) -> None:
    pass


def _enough_steps(config: TrainConfig, state: dict, train_images: int, log) -> TrainConfig:
    """``config`` with a batch small enough for ``state["min_steps_per_epoch"]`` steps an epoch; where it
    changes, said in one line and recorded in ``state`` (for the checkpoint and model.json)."""
    steps = state["min_steps_per_epoch"]
    enough = with_enough_steps(config, train_images, steps)
    if enough.batch_size != config.batch_size:
        log(
            f"{train_images} training images: batches of {enough.batch_size}, not {config.batch_size}, so that "
            f"an epoch takes at least {steps} optimizer steps (--batch-size sets it)"
        )
        state["config"] = enough.to_dict()
        state["batch_rule"] = {
            "min_steps_per_epoch": steps,
            "preset_batch_size": config.batch_size,
            "batch_size": enough.batch_size,
        }
    return enough


def with_extras(
    splits: Splits, config: TrainConfig, data_dir, making: Making | None = None
) -> tuple[Splits, dict, dict | None]:
    """``splits`` with what ``config`` trains on beside the digits, each epoch a fresh sample of it
    (loaders.EpochSample): the digits redrawn with other pens (``config.pens``), and the outliers of
    the reject class (``config.reject``), made as ``making`` says (placed as the dataset places
    its images) where they are not kept yet. Also how many outliers of each source, and of each pen."""
    making = replace(making or DEFAULT_MAKING, layout=splits.spec.layout)
    pen_counts = None
    if config.pens:
        splits, pen_counts = _with_pen_copies(splits, config.seed, data_dir, making)
    outlier_counts = {}
    if config.reject:
        digits = splits.size("train")
        outliers, outlier_counts = training_outliers(digits, config.seed, data_dir, making=making)
        draws = tuple(
            (count, min(count, round(OUTLIERS_PER_EPOCH[source] * digits))) for source, count in outlier_counts.items()
        )
        splits = replace(splits, outliers=torch.from_numpy(outliers), outlier_draws=draws)
    return splits, outlier_counts, pen_counts


def _with_pen_copies(splits: Splits, seed: int, data_dir, making: Making) -> tuple[Splits, dict]:
    """``splits`` with its training digits' pen copies (data/pens.py), and how many of each pen."""
    train_digits, labels = splits.train_images[splits.train_indices], splits.train_labels[splits.train_indices]
    which = hashlib.sha256(np.asarray(splits.train_indices, dtype=np.int64).tobytes()).hexdigest()[:16]
    key = {"dataset": splits.spec.name, "images": splits.spec.files[0].sha256, "train_indices": which}
    copies, copy_labels, counts = training_copies(
        train_digits.numpy(), labels.numpy(), key, seed, data_dir, making=making
    )
    per_epoch = min(len(copies), round(COPIES_PER_EPOCH * splits.size("train")))
    splits = replace(splits, copies=torch.from_numpy(copies), copy_labels=torch.from_numpy(copy_labels))
    return replace(splits, copies_per_epoch=per_epoch), counts


@dataclass
class TrainingData:
    """What a run trained on, as model.json records it."""

    spec: DatasetSpec | FolderDataset
    splits: Splits
    outliers: dict  # {source: count} of the reject class's outliers; empty without one
    pens: dict | None  # {pen: copies} of the digits redrawn with other pens; None without them
    source: dict | None  # a folder dataset's record; None for a dataset of the table


def _save_run(training: Training) -> RunResult:
    """Calibrate, choose the reject threshold, score the test set and write the run folder (rank 0 only):
    weights, model.json, history, metrics."""
    model, config = training.model, training.config
    scores = score_run(model, *training.loaders[1:], list(training.data.spec.classes), config.reject)
    model.input_transform = config.input_transform  # from here on the model transforms its inputs
    model.class_weight = None  # the loss's weighting was training's
    # model.json holds these two; metrics.json what they give on the test split
    model.temperature, model.threshold = scores.pop("temperature"), scores.pop("threshold")
    history = training.checkpoint.completed
    epochs = [
        Epoch(n, h["train_loss"], h["val_loss"], h["val_acc"], h["seconds"]) for n, h in enumerate(history, start=1)
    ]
    info, metrics = _run_info(training), _metrics(scores, epochs, config.epochs)
    run_dir, latest = training.context.run_dir, None
    if training.processes.is_main:
        write_run(run_dir, model, info, epochs, metrics)
        latest = point_latest_at(run_dir)
    return RunResult(run_dir, model, epochs, metrics, info, training.data.splits, latest)


def _metrics(scores: dict, epochs: list[Epoch], planned: int) -> Metrics:
    """metrics.json: the test scores, the last epoch's validation, and whether all ``planned`` epochs ran."""
    interrupted = len(epochs) < planned
    return Metrics(
        test_acc=scores.pop("test_acc"),
        test_loss=scores.pop("test_loss"),
        val_acc=epochs[-1].val_acc,
        val_loss=epochs[-1].val_loss,
        train_seconds=sum(epoch.seconds for epoch in epochs),
        **scores,
        interrupted=interrupted,
        epochs_completed=len(epochs) if interrupted else None,
    )


def _run_info(training: Training) -> RunInfo:
    """model.json: what the trained model is and how it was made."""
    model, config, state, data = training.model, training.config, training.state, training.data
    spec, splits = data.spec, data.splits
    reject = None
    if config.reject:
        reject = {
            "class": REJECT_CLASS,
            "threshold": model.threshold,
            "accept_rate": ACCEPT_RATE,
            "outliers": data.outliers,
            "outliers_per_epoch": dict(zip(data.outliers, (drawn for _, drawn in splits.outlier_draws), strict=True)),
            "loss_weight": REJECT_LOSS_WEIGHT,
        }
    return RunInfo(
        dataset=spec.name,
        classes=list(spec.classes),
        layout=spec.layout,
        input_size=model.input_size,
        input_transform=config.input_transform,
        features=config.features,
        temperature=model.temperature,
        reject=reject,
        pens=None if data.pens is None else pens_record(data.pens) | {"copies_per_epoch": splits.copies_per_epoch},
        source=data.source,
        preset=state["preset"],
        batch_rule=state.get("batch_rule"),
        hyperparameters=RunInfo.hyperparameters_of(config.to_dict()),
        splits={split: splits.size(split) for split in SPLITS},
        loader=state["loader"],
        device=str(training.device),
        world_size=training.processes.world_size,
        versions={"mnist_logreg": package_version(), "torch": torch.__version__},
        created=datetime.now().isoformat(timespec="seconds"),
    )


def score_run(model, val_loader, test_loader, names: list[str], reject: bool) -> dict:
    """What training leaves to measure: the ``temperature`` fitted on the validation split; the test
    accuracy, confusion and per-class table over the dataset's classes (the reject class aside,
    so the figure compares with runs without one); the expected calibration error on the test
    split before and after calibration; and, for a run with a reject class, the ``threshold`` chosen
    on the validation digits (None without one) and what it accepts of the test digits."""
    val, test = logits_and_labels(model, val_loader), logits_and_labels(model, test_loader)
    return score_logits(*val, *test, names=names, reject=reject)


def score_logits(
    val_logits, val_labels, test_logits, test_labels, *, names: list[str], reject: bool, threshold_floor: float = 0.0
) -> dict:
    """``score_run`` of logits already computed; the threshold no lower than ``threshold_floor``."""
    classes = len(names)
    temperature = fit_temperature(val_logits, val_labels)
    predicted = test_logits[:, :classes].argmax(axis=1)
    confusion = confusion_matrix(test_labels, predicted, classes)
    before, after = softmax(test_logits), softmax(test_logits, temperature)
    scores = {
        "temperature": temperature,
        "test_acc": float(np.mean(predicted == test_labels)),
        "test_loss": float(F.cross_entropy(torch.from_numpy(test_logits), torch.from_numpy(test_labels))),
        "confusion": confusion.tolist(),
        "per_class": per_class_metrics(confusion, names),
        "threshold": None,
        "calibration": {
            "ece_before": expected_calibration_error(before, test_labels),
            "ece_after": expected_calibration_error(after, test_labels),
        },
    }
    if reject:
        threshold = max(
            choose_threshold(digit_scores(softmax(val_logits, temperature), classes), ACCEPT_RATE), threshold_floor
        )
        taken = accepted(after, classes, threshold)
        scores["threshold"] = threshold
        scores["reject"] = {
            "val_accepted": float(accepted(softmax(val_logits, temperature), classes, threshold).mean()),
            "test_accepted": float(taken.mean()),
            "test_acc_accepted": float(np.mean(predicted[taken] == test_labels[taken])) if taken.any() else None,
        }
    return scores


def evaluate_run(
    run_dir: Path | str,
    split: str = "test",
    data_dir: Path | str = DEFAULT_DATA_DIR,
    dataset: DatasetSpec | None = None,
    moved_to: Path | str | None = None,
) -> dict:
    """Loss and accuracy of a saved run on its validation or test split (for a run trained on a
    folder that has moved since, read from ``moved_to``)."""
    if split not in SCORED_SPLITS:
        raise SettingError(f"split={split!r} is not one of {list(SCORED_SPLITS)}")
    model, info = load_run(run_dir)
    splits = run_splits(info, data_dir, dataset, moved_to)
    images, labels = splits.tensors(split)
    start = time.perf_counter()
    result = evaluate(model, TensorLoader(images, labels, batch_size=1000))
    return {
        "run": str(real_run_dir(run_dir)),
        "dataset": info.dataset,
        "split": split,
        "size": len(labels),
        "accuracy": result["val_acc"],
        "loss": result["val_loss"],
        "seconds": time.perf_counter() - start,
    }
