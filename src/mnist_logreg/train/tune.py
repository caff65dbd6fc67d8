"""A run taught one writer's hand (``mnist-logreg tune``): a copy of the run, moved towards a folder
of the writer's labelled images and held near what it knew, recalibrated, and written as a complete
run folder that records what it was tuned from. The run it started from is never changed.

Each step mixes the writer's training images with a replay sample of the run's own training
digits, and pulls the weights towards the run's (an L2 penalty on the difference): the replay keeps
the digits the writer did not show, the pull keeps what no image of the step speaks for. The
replay's outliers of "not a digit" weigh in its loss what they weighed in training
(``trained_class_weight``): weighing 1, half of that, a tune on the hardest writer took the share of
handwritten letters refused from 0.807 to 0.756, against 0.777 weighing 2 (bench.writers).
The writer's images weigh a quarter of the replay's in the loss (``TuneSettings.writer_weight``):
weighing as much, the hardest writer cost the MNIST test split 0.0044. A hand far from all the run
knew (letters of a family a run of capitals never saw) is still read worse after those steps than
the run reads its own training images; then the steps are taken again at twice the weight, up to
``writer_weight_max``, so that what the writer showed is learnt.
The temperature and the threshold are fitted again on the run's validation split, joined by the
writer's training images when there are ``calibration_min`` of them or more; the threshold is never
set lower than the run's own. A tune leaves the validation digits a little less sure of themselves,
and the threshold that accepts as many of them fell with it: tuned on its hardest writer, the
default run's fell from 0.713 to 0.654 and let in 0.029 more of the handwritten letters it refused,
where the tuned model under the run's threshold refused each letter it had refused before. The
writer's own ink is also shown in shapes that are no digit, as "not a digit" (``non_digit_shapes``).
With the threshold kept, the replay drawn from 40,000 images (``TuneSettings.replay_pool``) and the
writer's shapes, no writer's tune refused more than 0.011 fewer of the letters (bench.writers,
2026-12-05).
"""

from __future__ import annotations

import copy
import functools
import json
import shutil
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
from ..data.folders import open_folder
from ..data.loaders import EpochSample, TensorLoader, to_float_pixels, transform_all
from ..data.prepared import DEFAULT_MAKING, code_digest, prepared_path, read_prepared, write_prepared
from ..data.splits import Splits, run_splits
from ..errors import RunError, SettingError
from ..images.layout import FOLDER_LAYOUTS
from ..model.calibration import accepted, softmax
from ..model.lesson import MNISTModel, accuracy, reject_class_weight, weighted_cross_entropy
from ..model.metrics import logits_and_labels
from ..model.run_folder import (
    Metrics,
    RunInfo,
    checked_run_dir,
    info_digest,
    load_run,
    package_version,
    read_history,
    read_info,
    read_metrics,
    real_run_dir,
    write_run,
)
from .run import score_logits, with_extras


@dataclass
class Writer:
    """One writer's images, placed as the run places images, labelled with the run's class indices."""

    train_images: torch.Tensor  # (N, 28, 28) uint8: what the run learns from
    train_labels: torch.Tensor  # (N,) int64
    test_images: torch.Tensor  # (M, 28, 28) uint8: held out, for the before/after score
    test_labels: torch.Tensor
    record: dict  # what model.json keeps of them: "folder", "files", "train", "held_out", "classes"


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
    source = real_run_dir(run_dir)
    out = Path(out) if out is not None else RUNS_DIR / f"{source.name}-tuned-{datetime.now():%Y%m%d-%H%M%S}"
    if out.resolve() == source.resolve():
        raise SettingError(
            f"--out {out} is the run itself: tune writes a new run and never changes the one it starts from"
        )
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise RunError(f"{out} already holds something: tune writes a new run; choose another --out")
    writer = read_writer(writer_folder, read_info(checked_run_dir(run_dir)), log)  # refused before the slow part
    return Tuner(run_dir, data_dir, settings, log).tune(writer, out, started=start)


class Tuner:
    """A run made ready to be tuned, again and again: its model, its splits, the replay of its
    training data and its score on its test split before tuning. ``tune`` leaves all of them as
    they are, so that a server tunes each time from the run it serves, on all corrections so far."""

    def __init__(
        self,
        run_dir: Path | str,
        data_dir: Path | str = DEFAULT_DATA_DIR,
        settings: TuneSettings = TuneSettings(),
        log=print,
    ) -> None:
        self.model, self.info = load_run(run_dir)
        self.source = real_run_dir(run_dir)
        # The digest of the model.json read here: the replay pool's key, and what tuned runs record.
        self.digest = info_digest(self.source)
        self.settings = settings
        self.splits = run_splits(self.info, data_dir)
        self.replay = replay_pool(self.info, self.splits, data_dir, settings, run_digest=self.digest, log=log)
        self.test_before = self._scored_before()
        self.history = read_history(self.source)
        self.log = log

    @functools.cached_property
    def own_accuracy(self) -> float:
        """How often the run reads its replay pool right, "not a digit" a class like the others: how well
        a writer's images must be read before the writer's weight stops growing. Measured once, when
        first needed: a writer whose images are all read right after the first steps never needs it."""
        images, labels = self.replay  # input-transformed bytes: only the scale and the feature map are left to apply
        with torch.no_grad():
            logits = [self.model.weighed(to_float_pixels(part)) for part in images.split(POOL_CHUNK)]
        return float(accuracy(torch.cat(logits), labels)) if len(labels) else 0.0

    def _scored_before(self) -> dict:
        """The run's test split read as ``_read`` reads it: from its metrics.json, which holds the same
        figures, or scored afresh where it has none."""
        try:
            metrics = read_metrics(self.source)
        except RunError:
            return _read(self.model, self.info, *self.splits.tensors("test"))
        return _test({"test_acc": metrics.test_acc, "reject": metrics.reject}, self.splits.size("test"))

    def tune(self, writer: Writer, out: Path | str, started: float | None = None) -> TuneResult:
        """A tuned copy of the run written to ``out``, whole or not at all: it is written beside
        ``out`` and renamed into place, so a stop midway leaves no half run where a run is looked for."""
        start = time.perf_counter() if started is None else started
        model = copy.deepcopy(self.model)
        before = {
            "writer": _read(model, self.info, writer.test_images.unsqueeze(1), writer.test_labels),
            "test": self.test_before,
        }
        self.log(f"tuning on {len(writer.train_labels)} images of {writer.record['folder']} ...")
        class_weight, shapes = trained_class_weight(self.info), non_digit_shapes(writer, self.info)
        weight = _fit_writer(
            model,
            writer,
            self.replay,
            self.settings,
            lambda: self.own_accuracy,
            shapes=shapes,
            class_weight=class_weight,
        )
        scores = _recalibrate(model, self.info, writer, self.splits, self.settings)
        after = {
            "writer": _read(model, self.info, writer.test_images.unsqueeze(1), writer.test_labels),
            "test": _test(scores, self.splits.size("test")),
        }
        tuned = _tuned_info(self.info, model, self.source, writer, self.settings, digest=self.digest)
        tuned.tuned_from |= {
            "writer_weight_reached": weight,
            "non_digits": len(shapes),
            "before": before,
            "after": after,
        }
        seconds = time.perf_counter() - start
        out = Path(out)
        partial = out.with_name(f".{out.name}.partial")
        shutil.rmtree(partial, ignore_errors=True)  # left by a tune that was stopped
        write_run(partial, model, tuned, self.history, _metrics(scores, seconds))
        partial.rename(out)  # an empty folder at ``out`` is replaced
        return TuneResult(out, before, after, seconds)


def tunable_layout(info: RunInfo) -> str:
    """The folder layout that places a writer's images as the run places images; SettingError where none does."""
    layout = next((name for name, layout in FOLDER_LAYOUTS.items() if layout == info.layout), None)
    if layout is None:
        raise SettingError(
            f"this run places images as {info.dataset} does ({info.layout}), which no folder layout does: "
            f"tune works on runs whose images are placed as {sorted(FOLDER_LAYOUTS)} place them"
        )
    return layout


def read_writer(writer_folder: Path | str, info: RunInfo, log=print) -> Writer:
    """The writer's images, as the run reads images: refused where the run cannot be tuned on them."""
    folder = open_folder(writer_folder, layout=tunable_layout(info), log=log)
    unknown = [name for name in folder.classes if name not in info.classes]
    if unknown:
        raise SettingError(
            f"{folder.path} has classes {unknown} that the run does not know; its classes are {info.classes}"
        )
    arrays = read_folder(folder, log=log)
    index = np.array([info.classes.index(name) for name in folder.classes])
    return Writer(
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


def learning_from_all(pixels: np.ndarray, labels: np.ndarray, record: dict) -> Writer:
    """A writer of whom every image is learnt from and none held out: a server's corrections, few and
    each one precious. ``pixels`` (N, 28, 28) uint8 as the run places images; ``labels`` class indices."""
    empty = torch.zeros((0, *pixels.shape[1:]), dtype=torch.uint8)
    return Writer(
        torch.from_numpy(np.ascontiguousarray(pixels)),
        torch.from_numpy(np.asarray(labels, dtype=np.int64)),
        empty,
        torch.zeros(0, dtype=torch.int64),
        record | {"train": len(labels), "held_out": 0},
    )


REPLAY_CACHE = "replay"  # in the data folder, beside the pen copies and outliers a pool is drawn from
POOL_CHUNK = 4096  # pool images scaled to float32 at a time where the whole pool is read
# The code a replay pool depends on: the split, the extras, the epoch's draw, the input transform.
REPLAY_CODE = (
    "train.tune", "train.run", "data.splits", "data.loaders", "data.pens", "data.outliers", "images.inputs",
    "images.preprocess",
)  # fmt: skip


def replay_pool(
    info: RunInfo, splits: Splits, data_dir: Path | str, settings: TuneSettings, *, run_digest: str, log=print
) -> tuple[torch.Tensor, torch.Tensor]:
    """What the run trained on, to replay: ``settings.replay_pool`` of its training images (the digits,
    and the pen copies and outliers of "not a digit" it trained on beside them), drawn as training
    drew its epochs (loaders.EpochSample), input-transformed as the run transforms them and rounded
    to 8 bits, uint8; and their labels.

    Where the run trained on pen copies or outliers, the pool is drawn from all of them (200,000
    images read from the data folder to keep 40,000), so it is kept there itself (prepared.py),
    under a key of the run's model.json (``run_digest``), the settings and the code, and read from
    there the next time the run is tuned.
    """
    recipe = {name: value for name, value in info.recipe.items() if name in TrainConfig.__dataclass_fields__}
    config = TrainConfig(**recipe)
    if not (config.pens or config.reject):
        return _drawn_pool(info, splits, config, data_dir, settings, log=log)
    key = json.dumps(
        {"run": run_digest, "pool": settings.replay_pool, "seed": settings.seed, "code": code_digest(*REPLAY_CODE)},
        sort_keys=True,
    )
    path = prepared_path(data_dir, REPLAY_CACHE, key)
    kept = read_prepared(
        path, key, log, what="replay pool", holds=lambda kept: len(kept["images"]) == len(kept["labels"])
    )
    if kept is not None:
        return torch.from_numpy(kept["images"]), torch.from_numpy(kept["labels"])
    images, labels = _drawn_pool(info, splits, config, data_dir, settings, log=log)
    write_prepared(path, key, {"images": images.numpy(), "labels": labels.numpy()})
    return images, labels


def _drawn_pool(info: RunInfo, splits: Splits, config: TrainConfig, data_dir, settings: TuneSettings, *, log):
    """The replay pool drawn from the run's training split and extras, as ``replay_pool`` says."""
    splits, _, _ = with_extras(splits, config, data_dir, replace(DEFAULT_MAKING, log=log))
    generator = torch.Generator().manual_seed(settings.seed)
    groups = splits.epoch_groups()
    if groups is None:
        order = torch.randperm(splits.size("train") + splits.extra_count, generator=generator)
    else:
        order = EpochSample(splits.size("train"), groups, generator).order()
    images, labels = splits.train_images_at(order[: settings.replay_pool])
    # Input-transformed and rounded to 8 bits, as the run's training split held its images; kept as
    # bytes, a quarter of their size in float32 (the steps scale what they replay)
    return transform_all(info.input_transform, images, as_bytes=True), labels


def trained_class_weight(info: RunInfo) -> torch.Tensor | None:
    """Each output's weight in the loss the run was trained with: "not a digit" weighs model.json's
    ``reject.loss_weight`` (1 for runs that predate it); None where no class weighed more than 1."""
    weight = (info.reject or {}).get("loss_weight", 1.0)
    return None if weight == 1.0 else reject_class_weight(len(info.classes), weight)


# The writer's own ink in shapes that are no digit, learnt as "not a digit" beside the writer's digits
# (``non_digit_shapes``): their 2, 3, 4, 5, 6, 7 and 9 mirrored, their 1, 4 and 7 turned a quarter. A
# mirrored 0, 1 or 8 is still that digit, and a 6 turned halfway is a 9. Without them, a hand far from
# MNIST's taught the run that its pen writes digits whatever the shape: tuned on femkeklaver (k = 10),
# default runs of seeds 42, 43 and 44 refused 0.044, 0.069 and 0.044 fewer of the handwritten letters;
# with them, 0.010, 0.019 and 0.002, the MNIST test split within 0.0018 of the run. The replay grows
# with them (``TuneSettings.replay`` per image taught), and both count: the shapes beside a replay
# for the writer's images alone let through 0.029 and 0.076 more (seeds 42 and 43), as much replay
# without the shapes 0.040 and 0.036.
MIRRORED_DIGITS = ("2", "3", "4", "5", "6", "7", "9")
TURNED_DIGITS = ("1", "4", "7")


def non_digit_shapes(writer: Writer, info: RunInfo) -> torch.Tensor:
    """(N, 28, 28) uint8: the writer's training images made into shapes that are no digit, for a run
    of the ten digits and "not a digit"; none for any other run."""
    images, labels = writer.train_images, writer.train_labels
    if info.reject is None or not set(MIRRORED_DIGITS + TURNED_DIGITS) <= set(info.classes):
        return images[:0]

    def of(names: tuple[str, ...]) -> torch.Tensor:
        return images[torch.isin(labels, torch.tensor([info.classes.index(name) for name in names]))]

    return torch.cat([torch.flip(of(MIRRORED_DIGITS), dims=[-1]), torch.rot90(of(TURNED_DIGITS), 1, dims=[-2, -1])])


def _fit_writer(
    model: MNISTModel,
    writer: Writer,
    replay,
    settings: TuneSettings,
    own_accuracy,
    *,
    shapes: torch.Tensor,
    class_weight: torch.Tensor | None,
) -> float:
    """``settings.steps`` steps at the writer's weight, and as many again at twice it, up to
    ``settings.writer_weight_max``, while the writer's training images are read right less often than
    ``own_accuracy()``; the weights are pulled towards where they started throughout. The weight it
    ended at. The writer's ``shapes`` (``non_digit_shapes``) join its images as "not a digit", the
    last output; the replay's images weigh ``class_weight`` (``trained_class_weight``)."""
    with torch.no_grad():
        inputs = model.seen(to_float_pixels(writer.train_images))
        taught = torch.cat([inputs, model.seen(to_float_pixels(shapes))])
    not_a_digit = torch.full((len(shapes),), model.linear.out_features - 1)
    taught_labels = torch.cat([writer.train_labels, not_a_digit])
    anchor = [p.detach().clone() for p in model.linear.parameters()]
    weight, taken = settings.writer_weight, 0
    while True:
        _steps(
            model,
            taught,
            taught_labels,
            replay,
            class_weight=class_weight,
            weight=weight,
            anchor=anchor,
            taken=taken,
            settings=settings,
        )
        taken += settings.steps
        if weight >= settings.writer_weight_max:
            return weight
        with torch.no_grad():
            read_right = float(accuracy(model.linear(inputs), writer.train_labels))
        if read_right == 1.0 or read_right >= own_accuracy():  # all read right: the run's own need not be measured
            return weight
        weight = min(2 * weight, settings.writer_weight_max)


def _steps(
    model, inputs, labels, replay, *, class_weight, weight: float, anchor, taken: int, settings: TuneSettings
) -> None:
    """Full-batch steps on the writer's feature-mapped ``inputs``, each with the next images of the
    replay pool (round again when used up; ``taken`` steps were taken before) weighing ``class_weight``,
    and the weights pulled towards ``anchor``.

    Plain SGD, written out: ``torch.optim`` imports torch's compiler on first use, 2.6 s of a
    tune that must take one or two.
    """
    images, replay_labels = replay  # input-transformed bytes: only the scale and the feature map are left to apply
    parameters = list(model.linear.parameters())
    replayed = max(settings.replay * len(labels), settings.replay_min) if len(replay_labels) else 0
    features = torch.empty(replayed, model.linear.in_features)  # one buffer for every step's replay
    model.train()
    for step in range(taken, taken + settings.steps):
        loss = weight * F.cross_entropy(model.linear(inputs), labels)
        if replayed:
            chosen = torch.arange(step * replayed, (step + 1) * replayed) % len(replay_labels)
            with torch.no_grad():
                seen = model.mapped(to_float_pixels(images[chosen]), features)
            loss = loss + weighted_cross_entropy(model.linear(seen), replay_labels[chosen], class_weight)
        pull = sum(((p - p0) ** 2).sum() for p, p0 in zip(parameters, anchor, strict=True))
        gradients = torch.autograd.grad(loss + settings.anchor * pull, parameters)
        with torch.no_grad():
            for parameter, gradient in zip(parameters, gradients, strict=True):
                parameter -= settings.lr * gradient
    model.eval()


def _recalibrate(model: MNISTModel, info: RunInfo, writer: Writer, splits: Splits, settings: TuneSettings) -> dict:
    """The temperature and the threshold fitted again, on the run's validation split and, when there
    are enough of them, the writer's training images, the threshold no lower than the run's; the
    scores on the run's test split; and ``val_acc`` and ``val_loss`` on the validation split alone.
    Each split's logits are computed once."""
    val_logits, val_labels = logits_and_labels(model, TensorLoader(*splits.tensors("val"), 1000))
    logits, labels = val_logits, val_labels
    if len(writer.train_labels) >= settings.calibration_min:
        written = logits_and_labels(model, TensorLoader(writer.train_images.unsqueeze(1), writer.train_labels, 1000))
        logits, labels = np.concatenate([logits, written[0]]), np.concatenate([labels, written[1]])
    test = logits_and_labels(model, TensorLoader(*splits.tensors("test"), 1000))
    floor = info.reject["threshold"] if info.reject else 0.0
    scores = score_logits(
        logits, labels, *test, names=info.classes, reject=info.reject is not None, threshold_floor=floor
    )
    model.temperature, model.threshold = scores.pop("temperature"), scores.pop("threshold")
    classes = len(info.classes)
    scores["val_acc"] = float(np.mean(val_logits[:, :classes].argmax(1) == val_labels))
    scores["val_loss"] = float(F.cross_entropy(torch.from_numpy(val_logits), torch.from_numpy(val_labels)))
    return scores


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
    """``_read``'s figures of the test split, from what scoring measured of it (``score_logits`` or metrics.json)."""
    taken = scores["reject"]["test_accepted"] if scores.get("reject") else 1.0  # no reject class: all taken
    return {"images": images, "acc": scores["test_acc"], "accepted": taken}


def _tuned_info(
    info: RunInfo, model: MNISTModel, source: Path, writer: Writer, settings: TuneSettings, *, digest: str
) -> RunInfo:
    """The run's model.json, recalibrated, saying what it was tuned from (``source``, whose model.json
    has the sha256 ``digest``) and on which images."""
    reject = None if info.reject is None else info.reject | {"threshold": model.threshold}
    return replace(
        info,
        temperature=model.temperature,
        reject=reject,
        tuned_from={
            "run": str(source),
            "model_json_sha256": digest,
            "writer": writer.record,
            **settings.to_json(),
        },
        versions={"mnist_logreg": package_version(), "torch": torch.__version__},
        created=datetime.now().isoformat(timespec="seconds"),
    )


def _metrics(scores: dict, seconds: float) -> Metrics:
    return Metrics(train_seconds=seconds, **scores)
