"""mnist-logreg: logistic regression on MNIST and Fashion-MNIST, with the lesson's names.

from mnist_logreg import MNISTModel, fit, evaluate, accuracy, predict_image

The names are imported on first use (PEP 562), so ``import mnist_logreg.cli`` does not pay
for torch until a command needs it.
"""

from __future__ import annotations

import importlib

_WHERE = {
    "DATASETS": "data.catalog",
    "DataError": "errors",
    "MNISTModel": "model.lesson",
    "PRESETS": "config",
    "RunError": "errors",
    "RunInfo": "model.run_folder",
    "TrainConfig": "config",
    "accuracy": "model.lesson",
    "evaluate": "train.loop",
    "fetch": "data.fetch",
    "fit": "train.loop",
    "load_run": "model.run_folder",
    "load_splits": "data.splits",
    "predict_image": "model.lesson",
}
__all__ = sorted(_WHERE)  # noqa: PLE0605  (a list, built from the table above)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'mnist_logreg' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    globals()[name] = value  # once imported, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
