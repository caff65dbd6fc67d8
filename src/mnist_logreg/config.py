"""Every training default and rule, in one place and without torch: the CLI reads them at start-up.

``TrainConfig`` checks its values; ``PRESETS`` are the named recipes; the names of optimizers,
schedules, devices and loaders are listed here once.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from pathlib import Path

from .errors import SettingError

LESSON_VAL_SIZE = 10000  # the lesson's 50,000 / 10,000 split of the 60,000 training images
DEFAULT_SEED = 42  # split, initial weights and shuffling
RUNS_DIR = Path("runs")  # where runs go unless --out says otherwise
LOADERS = ("memory", "dataloader")  # in-memory tensors (fast) or the lesson's torchvision DataLoaders
DEVICES = ("auto", "cpu", "cuda")  # auto: cuda when torch sees a GPU
SPLITS = ("train", "val", "test")  # a run's three sets: trained on, chosen on, reported on
SCORED_SPLITS = SPLITS[1:]  # the splits a saved run is evaluated on: val and test
TOP_K = 3  # classes listed per prediction, unless asked for more or fewer
# What a model does to each 28×28 image before its linear layer (implemented in images/inputs.py).
INPUT_TRANSFORMS = ("none", "deskew")  # as it is, or sheared upright
FEATURES = ("pixels", "pixel-pairs")  # the 784 pixels, or each pixel and its neighbours' pairs
# The reject option (data/outliers.py, model/calibration.py). The threshold accepts this share of the
# validation digits: a little above the 0.95 the test digits, by other writers, must keep
# (docs/presets.md, how the recipes were chosen).
ACCEPT_RATE = 0.96
REJECT_CLASS = "not a digit"  # the eleventh class's name, and what a rejected image is called
# The pools an epoch's sample is drawn from (COPIES_PER_EPOCH, OUTLIERS_PER_EPOCH below), per training
# digit: non-digits drawn by code (scribbles, strokes, shapes, blobs, noise, blanks), a seeded choice
# of Fashion-MNIST's training garments, and copies of a seeded choice of the training digits redrawn
# with other pens. Each is made anew where a run finds it not kept, so its size is the first run's
# wait: four times as many images (the pools of before) took more than three times as long and moved
# no validation figure by more than 0.006 (bench/shares.py, docs/presets.md).
DRAWN_OUTLIERS_PER_DIGIT = 0.4
GARMENTS_PER_DIGIT = 0.12
PEN_COPIES_PER_DIGIT = 0.25
# Each epoch trains on every digit and a fresh, seeded sample of the copies and of each source of
# the outliers, this many per training digit (all of a pool that holds no more: the pen copies in
# the default): the pools are seen over the run, and an epoch costs little more than its digits
# (loaders.EpochSample). Chosen on the validation split (val digits redrawn with each pen, outliers
# drawn with another seed, Fashion-MNIST's test garments): the drawn outliers teach where strokes
# stop being a digit, while the garments are told apart almost at once, so most of an epoch's
# outliers are drawn ones (bench/shares.py measures the candidates; docs/presets.md has the table).
# The keys are the sources outliers.training_outliers counts.
COPIES_PER_EPOCH = 0.25
OUTLIERS_PER_EPOCH = {"drawn": 0.2, "fashion-mnist": 0.05}
# The outliers' weight in the training loss, against 1 for a digit: fewer outliers an epoch, each
# counting for more (chosen with the shares above).
REJECT_LOSS_WEIGHT = 2.0
# Each pen's share among the pen copies (docs/not-a-digit.md has how they were chosen on the validation split).
PEN_SHARES = {"thick": 1.0, "fine": 1.0, "blurred": 2.0, "low-res": 2.0, "faint": 1.0, "warped": 1.0}
CALIBRATION_BINS = 15  # equal-width confidence bins of the expected calibration error
# A small training split under a preset's batch takes a handful of steps and learns little (171
# images in batches of 512 for 8 epochs: 8 steps, validation loss at chance). Unless --batch-size
# is given, `train` shrinks the batch so that each epoch takes at least MIN_STEPS_PER_EPOCH
# optimizer steps (200 over the presets' 8 epochs; MNIST's 50,000 take 98 in batches of 512), but
# not below MIN_BATCH images (docs/your-own-images.md has what it changed on the letters example).
MIN_STEPS_PER_EPOCH = 25
MIN_BATCH = 8


@dataclass(frozen=True)
class Limits:
    """What a `serve` worker takes on. Past ``queue`` predictions waiting it answers 503 at once;
    ``serve`` hands the whole of it to each worker process (``to_json``, ``from_json``)."""

    queue: int = 32  # predictions waiting or running per worker; more would only time out
    timeout_s: float = 10.0  # a prediction still running after this is answered 503, not left hanging
    cors: tuple[str, ...] = ()  # origins allowed to call the API from a browser; none by default
    upload_bytes: int = 5 * 1024 * 1024  # a phone photo fits; a larger body is refused with 413
    files: int = 64  # files in one batch request
    # Past this, stop reading an oversized body and answer: a body is drained up to here so that a
    # client still sending sees the 413, not a reset connection.
    drain_bytes: int = 64 * 1024 * 1024
    corrections: int = 10_000  # images `serve --corrections DIR` keeps; past that a correction is answered 409

    def to_json(self) -> dict:
        return {each.name: getattr(self, each.name) for each in fields(self)}

    @classmethod
    def from_json(cls, values: dict) -> Limits:
        return cls(**{**values, "cors": tuple(values.get("cors", ()))})


@dataclass(frozen=True)
class TuneSettings:
    """How ``mnist-logreg tune`` teaches a run one writer's hand (train/tune.py)."""

    steps: int = 100  # full-batch steps on the writer's images
    lr: float = 0.1  # plain SGD
    # The writer's images' loss against 1 for the replay's: a quarter took what the hardest writer cost
    # the MNIST test split from 0.0044 to 0.0018 (bench.writers; 0.0025 since the replay's outliers weigh
    # what they weighed in training, train/tune.py; 0.0019 replaying a pool of 40,000). A hand far from
    # every other (the letters example's held-out families) is not learnt in ``steps`` at a quarter:
    # while the run reads the writer's images worse than it reads its own training images, the steps
    # are taken again at twice the weight, up to ``writer_weight_max``.
    writer_weight: float = 0.25
    writer_weight_max: float = 1.0
    replay: int = 8  # the run's own training images replayed per image taught (the writer's, its shapes) a step
    replay_min: int = 128  # and at least this many: a few corrections must not outweigh what the run knew
    # The distinct training images the steps replay, in turn: input-transformed once, when the run is
    # made ready, instead of each step transforming new ones (deskewing 40,000 took 0.8 s of a tune).
    # A tune on 10 images per digit replays 80,000: ten passes over a pool of 8,192, which drifted from
    # the run where no writer's image spoke (a run of seed 44 tuned on a writer it read right already
    # refused 0.038 fewer handwritten letters); two passes over 40,000 refused as many as before.
    replay_pool: int = 40_000
    anchor: float = 1e-2  # the L2 pull of the weights towards the run's, per step
    calibration_min: int = 100  # writer images from which they join the validation split for calibration
    seed: int = DEFAULT_SEED  # the replay samples

    def to_json(self) -> dict:
        return asdict(self)


# ---------------------------------------------------------------------------------------------
# Presets
# ---------------------------------------------------------------------------------------------


def _show(value) -> str:
    """A value as a person typed it: 1.5, -1, nan (not -1.0 or float('nan'))."""
    return f"{value:g}" if isinstance(value, float) else repr(value)


OPTIMIZERS = ("sgd", "adam", "adamw")  # torch.optim.SGD, Adam, AdamW (loop.OPTIMIZER_CLASSES)

SCHEDULES: dict[str, Callable[[float], float] | None] = {
    "constant": None,
    "cosine": lambda progress: 0.5 * (1 + math.cos(math.pi * progress)),  # progress in [0, 1)
    "linear": lambda progress: 1 - progress,
}


def setting(default=MISSING, *, help: str, choices: tuple[str, ...] = (), optimizers: tuple[str, ...] = ()):
    """A TrainConfig field with what the command line says of it: its ``help``, its ``choices``, and
    the ``optimizers`` it applies to (all when empty). The train flags are generated from these."""
    metadata = {"help": help, "choices": tuple(choices), "optimizers": tuple(optimizers)}
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class TrainConfig:
    """One training recipe. Each field is a ``train`` flag (``batch_size`` is ``--batch-size``)."""

    epochs: int = setting(help="passes over the training split")
    lr: float = setting(help="learning rate (its peak, under a schedule)")
    batch_size: int = setting(128, help="images per step")
    optimizer: str = setting("sgd", help="torch.optim's SGD, Adam or AdamW", choices=OPTIMIZERS)
    momentum: float = setting(0.0, help="SGD's momentum, in [0, 1)", optimizers=("sgd",))
    weight_decay: float = setting(0.0, help="L2 penalty, as the optimizer applies it")
    schedule: str = setting("constant", help="learning-rate multiplier over the run", choices=tuple(SCHEDULES))
    seed: int = setting(DEFAULT_SEED, help="seed for the split, the initial weights and the shuffling")
    val_size: int = setting(LESSON_VAL_SIZE, help="training images held out for validation")
    input_transform: str = setting(
        "none", help="applied to every image first: 'deskew' shears digits upright", choices=INPUT_TRANSFORMS
    )
    features: str = setting(
        "pixels",
        help="what the linear layer weighs: the pixels, or also pairs of neighbouring pixels",
        choices=FEATURES,
    )
    reject: bool = setting(
        False, help="also learn an eleventh class, 'not a digit', from images that are none (data/outliers.py)"
    )
    pens: bool = setting(
        False,
        help="also train on copies of the digits redrawn with other pens: thick, fine, blurred, ... (data/pens.py)",
    )

    def __post_init__(self) -> None:
        if not (isinstance(self.epochs, int) and self.epochs > 0):
            raise SettingError(f"epochs={self.epochs!r} must be a positive integer")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise SettingError(f"lr={_show(self.lr)} must be a positive number")
        if not (isinstance(self.batch_size, int) and self.batch_size > 0):
            raise SettingError(f"batch_size={self.batch_size!r} must be a positive integer")
        for each in fields(self):
            value, choices = getattr(self, each.name), each.metadata["choices"]
            if choices and value not in choices:
                raise SettingError(f"{each.name}={value!r} is not one of {sorted(choices)}")
        if not (self.weight_decay >= 0 and math.isfinite(self.weight_decay)):
            raise SettingError(f"weight_decay={_show(self.weight_decay)} must be 0 or more")
        if not 0 <= self.momentum < 1:
            raise SettingError(f"momentum={_show(self.momentum)} must be in [0, 1)")
        if not (isinstance(self.seed, int) and self.seed >= 0):
            raise SettingError(f"seed={self.seed!r} must be 0 or more")
        if not (isinstance(self.val_size, int) and self.val_size > 0):
            raise SettingError(f"val_size={self.val_size!r} must be a positive integer")
        for each in fields(self):  # a setting the optimizer ignores must not look as if it had been used
            value, optimizers = getattr(self, each.name), each.metadata["optimizers"]
            if optimizers and self.optimizer not in optimizers and value != each.default:
                raise SettingError(
                    f"{each.name}={_show(value)} applies only to optimizer {' or '.join(map(repr, optimizers))}, "
                    f"and this recipe uses {self.optimizer!r}"
                )

    def updated(self, **overrides) -> TrainConfig:
        """A copy with the given fields replaced; ``None`` values leave a field as it is."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})

    def to_dict(self) -> dict:
        """The settings that shaped the run: a setting the optimizer does not use is left out."""
        return {each.name: getattr(self, each.name) for each in fields(self) if self.applies(each.name)}

    def applies(self, name: str) -> bool:
        """Whether the setting ``name`` has any effect with this recipe's optimizer."""
        optimizers = next(each for each in fields(self) if each.name == name).metadata["optimizers"]
        return not optimizers or self.optimizer in optimizers


_BEST_RAW = TrainConfig(epochs=6, lr=0.02, batch_size=512, optimizer="adam", schedule="cosine")

_DESKEWED = replace(_BEST_RAW, input_transform="deskew", weight_decay=1e-4)

# A ladder, each rung one idea on the last: the lesson; a better optimizer; straightened digits;
# pairs of neighbouring pixels. Every rung is one linear layer and a softmax.
PRESETS: dict[str, TrainConfig] = {
    # The lesson exactly: four fit(5, 0.001, ...) calls of plain SGD on batches of 128.
    "notebook": TrainConfig(epochs=20, lr=0.001),
    # The best recipe found for the linear model on raw pixels (docs/presets.md).
    "raw": _BEST_RAW,
    # The same recipe on deskewed digits, with a small L2 penalty: Adam gives the rarely inked
    # border pixels full-sized steps, and their large weights drowned the digit-shaped templates
    # in the weight images; L2 1e-4 pulls them to zero at the same validation accuracy
    # (docs/presets.md has the figures).
    "deskewed": _DESKEWED,
    # The most accurate recipe for the dataset: on MNIST, deskewed digits and the pairs of
    # neighbouring pixels, trained two epochs longer (eight: validation accuracy still rose),
    # with the class "not a digit" learnt from outliers.
    "default": replace(_DESKEWED, features="pixel-pairs", epochs=8, reject=True, pens=True),
}

# Where the best recipe differs by dataset. Garments are not slanted pen strokes: deskewing
# costs Fashion-MNIST validation accuracy, so its default keeps them as they are, with the pixel
# pairs and without the L2 penalty, which cost it a little too (docs/presets.md). It has no
# reject class: the outliers are made for digits (the garments among them), and what is "not a
# garment" would need outliers of its own.
# A folder of one's own images ("folder-<layout>", data/folders.py) has no outliers of its own either;
# placed plainly (--layout resize) its pictures are not pen strokes, and it is treated as garments are.
DATASET_OVERRIDES: dict[tuple[str, str], dict] = {
    ("default", "fashion-mnist"): {"input_transform": "none", "weight_decay": 0.0, "reject": False, "pens": False},
    ("default", "folder-digits"): {"reject": False, "pens": False},
    ("default", "folder-resize"): {"input_transform": "none", "weight_decay": 0.0, "reject": False, "pens": False},
}


def with_enough_steps(
    config: TrainConfig, train_images: int, steps_per_epoch: int = MIN_STEPS_PER_EPOCH
) -> TrainConfig:
    """``config`` with a batch that takes at least ``steps_per_epoch`` optimizer steps over
    ``train_images``: the images split evenly into that many batches, never more than its own
    batch nor fewer than MIN_BATCH images. Unchanged where its own batch already takes enough."""
    if math.ceil(train_images / config.batch_size) >= steps_per_epoch:
        return config
    return replace(config, batch_size=min(config.batch_size, max(MIN_BATCH, train_images // steps_per_epoch)))


def get_preset(name: str, dataset: str = "mnist") -> TrainConfig:
    """The preset ``name`` as it applies to ``dataset``."""
    try:
        preset = PRESETS[name]
    except KeyError:
        raise SettingError(f"preset={name!r} is not one of {sorted(PRESETS)}") from None
    return replace(preset, **DATASET_OVERRIDES.get((name, dataset), {}))
