"""mnist-logreg: logistic regression on MNIST and Fashion-MNIST, with the lesson's names.

from mnist_logreg import MNISTModel, fit, evaluate, accuracy, predict_image
"""

from .data import load_splits
from .datasets import DATASETS
from .fetch import fetch
from .idx import DataError
from .model import MNISTModel, accuracy, predict_image
from .runs import RunError, RunInfo, load_run
from .training import PRESETS, TrainConfig, evaluate, fit

__all__ = [
    "DATASETS",
    "DataError",
    "MNISTModel",
    "PRESETS",
    "RunError",
    "RunInfo",
    "TrainConfig",
    "accuracy",
    "evaluate",
    "fetch",
    "fit",
    "load_run",
    "load_splits",
    "predict_image",
]
