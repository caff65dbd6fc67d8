"""A dataset's images as numpy arrays, read without torch: a dataset's verified files, and the one
way to reopen the images a run was trained and tested on (``reopen_run_data``), which training's
splits, evaluation, the report and predicting a dataset image all go through.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError
from .catalog import DEFAULT_DATA_DIR, DatasetSpec, get_spec
from .fetch import fetch, missing_files
from .folders import FolderDataset, check_can_move
from .idx import read_idx


@dataclass
class DataArrays:
    """A dataset's training and test images as the model's 28×28 inputs, and their labels."""

    train_images: np.ndarray  # (N, 28, 28) uint8: the whole training file (validation included)
    train_labels: np.ndarray  # (N,) int64
    test_images: np.ndarray  # (M, 28, 28) uint8
    test_labels: np.ndarray  # (M,) int64


def read_dataset(
    spec: DatasetSpec, data_dir: Path | str, *, download: bool = True, log: Callable[[str], None] = lambda m: None
) -> DataArrays:
    """The dataset's four files, checked (and fetched first where missing, with ``download``)."""
    if download:
        fetch(spec, data_dir, log=log)
    elif missing_files(spec, data_dir):
        raise DataError(
            f"{spec.name} is not in {spec.raw_dir(data_dir)}; run 'mnist-logreg fetch --dataset {spec.name}'"
        )
    raw_dir = spec.raw_dir(data_dir)
    train_images, train_labels, test_images, test_labels = (read_idx(raw_dir / f.name) for f in spec.files)
    return DataArrays(train_images, train_labels.astype(np.int64), test_images, test_labels.astype(np.int64))


def reopen_run_data(
    info,
    data_dir: Path | str = DEFAULT_DATA_DIR,
    dataset: DatasetSpec | None = None,
    moved_to: Path | str | None = None,
) -> tuple[DataArrays, DatasetSpec | FolderDataset]:
    """The images a run was trained and tested on, read again, and where they came from.

    ``info`` is the run's RunInfo (model.json). ``dataset`` overrides the dataset it names (for
    datasets outside the table). A run trained on a folder reads that folder again (from its
    cache, where it has one), or the same images where they are now, ``moved_to``: refused unless
    they are the files the run recorded.
    """
    from .folder_images import check_same_files, read_folder

    check_can_move(info.source, moved_to, info.dataset)
    if dataset is None and info.source is not None:
        folder = FolderDataset.from_json(info.source, info.classes, moved_to)
        arrays = read_folder(folder)
        check_same_files(info.source, arrays.files, folder.path)
        return arrays, folder
    spec = get_spec(dataset if dataset is not None else info.dataset)
    return read_dataset(spec, data_dir), spec
