"""A run's images reopened: the one reader that evaluation, the report and predicting a dataset image share."""

from __future__ import annotations

import shutil
import sys

import numpy as np
import pytest
import torch

from mnist_logreg.data.arrays import read_dataset, reopen_run_data
from mnist_logreg.data.folders import FolderDataset, open_folder
from mnist_logreg.data.idx import read_idx
from mnist_logreg.data.splits import folder_splits, load_splits, run_splits
from mnist_logreg.errors import DataError, UsageError
from mnist_logreg.model.run_folder import read_info
from tests.helpers import untrained_run, write_shape_folder


def test_a_datasets_files_are_read_as_they_are_and_without_torch(fake_data):
    spec, data_dir = fake_data
    arrays = read_dataset(spec, data_dir)
    files = [read_idx(spec.raw_dir(data_dir) / f.name) for f in spec.files]
    assert np.array_equal(arrays.train_images, files[0]) and np.array_equal(arrays.test_labels, files[3])
    assert arrays.train_labels.dtype == np.int64 and arrays.test_labels.dtype == np.int64
    assert "torch" not in sys.modules["mnist_logreg.data.arrays"].__dict__


def test_a_table_runs_splits_are_reopened_as_training_made_them(fake_data, tmp_path):
    spec, data_dir = fake_data
    info = read_info(untrained_run(tmp_path / "run", splits={"train": 250, "val": 50, "test": 100}, seed=7))
    reopened = run_splits(info, data_dir, spec)
    trained = load_splits(spec, data_dir, val_size=50, seed=7)
    assert reopened.val_indices == trained.val_indices and reopened.train_indices == trained.train_indices
    assert reopened.val_indices != load_splits(spec, data_dir, val_size=50, seed=8).val_indices  # the seed counts
    for split in ("train", "val", "test"):
        assert all(torch.equal(a, b) for a, b in zip(reopened.tensors(split), trained.tensors(split), strict=True))


def test_a_folder_runs_images_are_reopened_where_they_moved_and_only_if_they_are_the_same(tmp_path):
    folder = open_folder(write_shape_folder(tmp_path / "shapes", per_class=12))
    trained, summary = folder_splits(folder, val_size=6, seed=3)
    source = folder.to_json() | {"files": summary["files"]}
    splits = {"train": trained.size("train"), "val": 6, "test": trained.size("test")}
    layout = {"box": 20, "centre_of_mass": True}
    run = untrained_run(
        tmp_path / "run", dataset="shapes", classes=folder.classes, layout=layout, source=source, seed=3, splits=splits
    )
    info = read_info(run)
    moved = shutil.move(tmp_path / "shapes", tmp_path / "moved")
    arrays, where = reopen_run_data(info, moved_to=moved)
    assert isinstance(where, FolderDataset) and where.path == moved.resolve()
    assert np.array_equal(arrays.test_images, trained.test_images.numpy())
    assert run_splits(info, moved_to=moved).val_indices == trained.val_indices
    next(moved.glob("*/*.png")).unlink()
    with pytest.raises(DataError, match="does not hold the images this run was trained on"):
        reopen_run_data(info, moved_to=moved)


def test_a_new_place_is_refused_for_a_run_of_the_table(fake_data, tmp_path):
    _, data_dir = fake_data
    info = read_info(untrained_run(tmp_path / "run"))
    with pytest.raises(UsageError, match="--dataset FOLDER is for a run trained on a folder"):
        reopen_run_data(info, data_dir, moved_to=tmp_path)
