"""The lesson's three sets, train / validation / test: a dataset's verified files read into memory,
or a folder's decoded images, split as the lesson splits them (loaders.py batches them).

torchvision is imported only where it is used (the lesson's datasets, for the DataLoader path):
importing it costs about a second and 170 MB, and the in-memory path reads the same files directly.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import random_split

from ..config import DEFAULT_SEED, LESSON_VAL_SIZE, SPLITS
from ..errors import RunError, SettingError
from ..images.inputs import apply_input_transform
from .arrays import DataArrays, read_dataset, reopen_run_data
from .catalog import DEFAULT_DATA_DIR, DatasetSpec, get_spec
from .folders import FolderDataset, check_can_move


@dataclass
class Splits:
    """The lesson's three sets: a seeded random_split of the training file, and the test file.
    For a folder dataset (data/folders.py), the folder's training and test images, split stratified.

    Holds the raw bytes once; ``tensors`` and ``torchvision_sets`` give views of the same split.
    """

    spec: DatasetSpec | FolderDataset
    data_dir: Path
    train_images: torch.Tensor  # (60000, 28, 28) uint8: the whole training file
    train_labels: torch.Tensor  # (60000,) int64
    test_images: torch.Tensor  # (10000, 28, 28) uint8
    test_labels: torch.Tensor  # (10000,) int64
    train_indices: list[int]  # into the training file, as random_split chose them
    val_indices: list[int]
    # Training digits redrawn with other pens (data/pens.py), trained on after the digits: (N, 28, 28)
    # uint8, and their labels (N,) int64.
    copies: torch.Tensor | None = None
    copy_labels: torch.Tensor | None = None
    # Non-digits trained on as one more class, after the copies (data/outliers.py): (N, 28, 28) uint8,
    # one source after another (drawn, then garments).
    outliers: torch.Tensor | None = None
    # How many of the copies each epoch draws afresh (EpochSample), and of the outliers (pool size,
    # drawn each epoch) for each source in the order they are held; None: all of them.
    copies_per_epoch: int | None = None
    outlier_draws: tuple[tuple[int, int], ...] | None = None

    def arrays(self) -> DataArrays:
        """The training and test files' images and labels as numpy arrays (views, not copies)."""
        return DataArrays(
            *(t.numpy() for t in (self.train_images, self.train_labels, self.test_images, self.test_labels))
        )

    @property
    def outlier_label(self) -> int:
        return len(self.spec.classes)

    def size(self, split: str) -> int:
        return {"train": len(self.train_indices), "val": len(self.val_indices), "test": len(self.test_labels)}[split]

    def tensors(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(images (N, 1, 28, 28) uint8, labels (N,) int64) of "train", "val" or "test"."""
        parts, labels = self.parts(split)
        return (parts[0] if len(parts) == 1 else torch.cat(parts)), labels

    def parts(self, split: str) -> tuple[list[torch.Tensor], torch.Tensor]:
        """The images of a split in the parts they are held in, (N, 1, 28, 28) uint8 each: for
        "train", its digits, then the pen copies and the outliers, as torchvision_sets has them;
        and all their labels (N,) int64. A transform can fill one tensor from them part by part,
        with no second copy of the whole split."""
        if split == "test":
            return [self.test_images.unsqueeze(1)], self.test_labels
        if split not in SPLITS:
            raise SettingError(f"split={split!r} is not one of {list(SPLITS)}")
        index = torch.as_tensor(self.train_indices if split == "train" else self.val_indices)
        parts, labels = [self.train_images[index].unsqueeze(1)], [self.train_labels[index]]
        if split == "train":
            for extra, extra_labels in self._extras():
                parts.append(extra.unsqueeze(1))
                labels.append(torch.as_tensor(extra_labels, dtype=torch.int64))
        return parts, torch.cat(labels)

    def train_images_at(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The images (n, 1, 28, 28) uint8 and labels (n,) at ``positions`` of the training split as
        ``tensors("train")`` orders it, gathered from its parts with no copy of the whole split."""
        parts, labels = self.parts("train")
        images = torch.empty((len(positions), *parts[0].shape[1:]), dtype=torch.uint8)
        start = 0
        for part in parts:
            here = (positions >= start) & (positions < start + len(part))
            images[here] = part[positions[here] - start]
            start += len(part)
        return images, labels[positions]

    def _extras(self) -> list[tuple[torch.Tensor, np.ndarray]]:
        """The training split's images after its digits, with their labels: the pen copies, then the outliers."""
        extras = []
        if self.copies is not None:
            extras.append((self.copies, self.copy_labels.numpy()))
        if self.outliers is not None:
            extras.append((self.outliers, np.full(len(self.outliers), self.outlier_label)))
        return extras

    def epoch_groups(self) -> list[tuple[int, int]] | None:
        """(pool size, drawn each epoch) of the copies and of each source of the outliers, after the
        digits; None when every epoch trains on all of them (the digits are always all there)."""
        groups = []
        if self.copies is not None:
            groups.append((len(self.copies), self.copies_per_epoch or len(self.copies)))
        if self.outliers is not None:
            groups.extend(self.outlier_draws or [(len(self.outliers), len(self.outliers))])
        return groups if any(drawn < pool for pool, drawn in groups) else None

    @property
    def extra_count(self) -> int:
        """Images trained on after the training split's digits: pen copies and outliers."""
        return sum(len(images) for images, _ in self._extras())

    def torchvision_sets(self, input_transform: str = "none"):
        """The lesson's datasets: torchvision with ToTensor, the same random_split (train, val), and test.

        ``input_transform`` (one of config.INPUT_TRANSFORMS, applied by images/inputs.py) follows
        ToTensor; the training split's transformed images are then rounded to 8 bits, as the
        in-memory loaders hold them (loaders.as_held).
        """
        from torch.utils.data import ConcatDataset, Subset
        from torchvision import transforms

        from .loaders import as_held

        seen = held = transforms.ToTensor()
        if input_transform != "none":
            seen = transforms.Compose([seen, functools.partial(apply_input_transform, input_transform)])
            held = transforms.Compose([seen, as_held])
        full, test = (self._torchvision_set(train, seen) for train in (True, False))
        train = Subset(full if held is seen else self._torchvision_set(True, held), self.train_indices)
        extras = [Labelled(images.numpy(), labels, held) for images, labels in self._extras()]
        if extras:
            train = ConcatDataset([train, *extras])
        return train, Subset(full, self.val_indices), test

    def _torchvision_set(self, train: bool, transform):
        """The training or test file as a dataset with ``transform``: torchvision's class, or for a
        folder its decoded images, through the same transform."""
        if isinstance(self.spec, FolderDataset):
            images, labels = (self.train_images, self.train_labels) if train else (self.test_images, self.test_labels)
            return Labelled(images.numpy(), labels.numpy(), transform)
        return self.spec.torchvision_class(root=str(self.data_dir), train=train, transform=transform)


class Labelled:
    """Images (N, 28, 28) uint8 and their labels (N,), as a dataset: ``transform`` on each image."""

    def __init__(self, images, labels, transform) -> None:
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        return self.transform(self.images[index]), int(self.labels[index])


def load_splits(
    dataset: str | DatasetSpec,
    data_dir: Path | str = DEFAULT_DATA_DIR,
    val_size: int = LESSON_VAL_SIZE,
    seed: int = DEFAULT_SEED,
    *,
    download: bool = True,
    log: Callable[[str], None] = lambda message: None,
) -> Splits:
    """Read the dataset and split train/val as the lesson does: ``random_split`` with a seeded generator."""
    spec = get_spec(dataset)
    return _split(spec, Path(data_dir), read_dataset(spec, data_dir, download=download, log=log), val_size, seed)


def folder_splits(
    folder: FolderDataset,
    val_size: int,
    seed: int = DEFAULT_SEED,
    progress: bool = False,
    log: Callable[[str], None] = lambda message: None,
) -> tuple[Splits, dict]:
    """A folder's splits, and what model.json records of its unreadable files: the training images
    less a stratified, seeded ``val_size`` for validation (folder_images.py reads and caches them)."""
    from .folder_images import read_folder

    arrays = read_folder(folder, progress, log)
    return _split(folder, folder.path, arrays, val_size, seed), arrays.summary()


def run_splits(
    info,
    data_dir: Path | str = DEFAULT_DATA_DIR,
    dataset: DatasetSpec | None = None,
    moved_to: Path | str | None = None,
) -> Splits:
    """The splits a run (``info``, its RunInfo) was trained on: its images reopened as
    ``arrays.reopen_run_data`` reopens them, split with its seed and sizes."""
    check_can_move(info.source, moved_to, info.dataset)  # a wrong --dataset is the first thing to say
    if "val" not in info.splits:  # a model.json written by hand, or by a tool of its own
        raise RunError(
            'this run\'s model.json records no splits ("splits": {"val": ...}): its data cannot be split as it was'
        )
    arrays, source = reopen_run_data(info, data_dir, dataset, moved_to)
    place = source.path if isinstance(source, FolderDataset) else Path(data_dir)
    return _split(source, place, arrays, info.splits["val"], info.seed)


def _split(source: DatasetSpec | FolderDataset, data_dir: Path, arrays: DataArrays, val_size: int, seed: int) -> Splits:
    """``arrays`` split into train and validation: a dataset's as the lesson's random_split, a folder's
    stratified (folder_images.stratified_split)."""
    n = len(arrays.train_labels)
    if not 0 < val_size < n:
        within = f": {data_dir} has {n} training images" if isinstance(source, FolderDataset) else ""
        raise SettingError(f"val_size={val_size} must be between 1 and {n - 1}{within}")
    if isinstance(source, FolderDataset):
        from .folder_images import stratified_split

        train, val = (part.tolist() for part in stratified_split(arrays.train_labels, val_size, seed))
    else:  # random_split draws one permutation of range(n): the same indices as on the torchvision dataset
        generator = torch.Generator().manual_seed(seed)
        train, val = (
            list(part.indices) for part in random_split(range(n), [n - val_size, val_size], generator=generator)
        )
    images = (arrays.train_images, arrays.train_labels, arrays.test_images, arrays.test_labels)
    tensors = [torch.from_numpy(np.ascontiguousarray(values)) for values in images]
    return Splits(source, data_dir, *tensors, train, val)
