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
from ..errors import DataError, SettingError
from ..images.inputs import apply_input_transform
from .catalog import DEFAULT_DATA_DIR, DatasetSpec, IdxFile, get_spec
from .fetch import fetch, missing_files
from .folders import FolderDataset
from .idx import read_idx


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
    # Non-digits trained on as one more class, after the copies (data/outliers.py): (N, 28, 28) uint8.
    outliers: torch.Tensor | None = None
    # How many of the copies and of the outliers each epoch draws afresh (EpochSample); None: all of them.
    copies_per_epoch: int | None = None
    outliers_per_epoch: int | None = None

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

    def _extras(self) -> list[tuple[torch.Tensor, np.ndarray]]:
        """The training split's images after its digits, with their labels: the pen copies, then the outliers."""
        extras = []
        if self.copies is not None:
            extras.append((self.copies, self.copy_labels.numpy()))
        if self.outliers is not None:
            extras.append((self.outliers, np.full(len(self.outliers), self.outlier_label)))
        return extras

    def epoch_groups(self) -> list[tuple[int, int]] | None:
        """(pool size, drawn each epoch) of the copies and the outliers, after the digits; None when
        every epoch trains on all of them (the digits are always all there)."""
        groups = []
        if self.copies is not None:
            groups.append((len(self.copies), self.copies_per_epoch or len(self.copies)))
        if self.outliers is not None:
            groups.append((len(self.outliers), self.outliers_per_epoch or len(self.outliers)))
        return groups if any(drawn < pool for pool, drawn in groups) else None

    @property
    def extra_count(self) -> int:
        """Images trained on after the training split's digits: pen copies and outliers."""
        return sum(len(images) for images, _ in self._extras())

    def torchvision_sets(self, input_transform: str = "none"):
        """The lesson's datasets: torchvision with ToTensor, the same random_split (train, val), and test.

        ``input_transform`` (one of config.INPUT_TRANSFORMS, applied by images/inputs.py) follows ToTensor.
        """
        from torch.utils.data import ConcatDataset, Subset
        from torchvision import transforms

        to_tensor = transforms.ToTensor()
        if input_transform != "none":
            to_tensor = transforms.Compose([to_tensor, functools.partial(apply_input_transform, input_transform)])
        if isinstance(self.spec, FolderDataset):  # the decoded images, through the same ToTensor
            full = Labelled(self.train_images.numpy(), self.train_labels.numpy(), to_tensor)
            test = Labelled(self.test_images.numpy(), self.test_labels.numpy(), to_tensor)
        else:
            full = self.spec.torchvision_class(root=str(self.data_dir), train=True, transform=to_tensor)
            test = self.spec.torchvision_class(root=str(self.data_dir), train=False, transform=to_tensor)
        train = Subset(full, self.train_indices)
        extras = [Labelled(images.numpy(), labels, to_tensor) for images, labels in self._extras()]
        if extras:
            train = ConcatDataset([train, *extras])
        return train, Subset(full, self.val_indices), test


class Labelled:
    """Images (N, 28, 28) uint8 and their labels (N,), as a dataset: ``transform`` on each image."""

    def __init__(self, images, labels, transform) -> None:
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        return self.transform(self.images[index]), int(self.labels[index])


def _read_pair(raw_dir: Path, images_file: IdxFile, labels_file: IdxFile) -> tuple[torch.Tensor, torch.Tensor]:
    images = torch.from_numpy(read_idx(raw_dir / images_file.name))
    labels = torch.from_numpy(read_idx(raw_dir / labels_file.name).astype(np.int64))
    return images, labels


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
    if download:
        fetch(spec, data_dir, log=log)
    elif missing_files(spec, data_dir):
        raise DataError(
            f"{spec.name} is not in {spec.raw_dir(data_dir)}; run 'mnist-logreg fetch --dataset {spec.name}'"
        )
    raw_dir = spec.raw_dir(data_dir)
    train_images, train_labels = _read_pair(raw_dir, spec.files[0], spec.files[1])
    test_images, test_labels = _read_pair(raw_dir, spec.files[2], spec.files[3])
    n = len(train_labels)
    if not 0 < val_size < n:
        raise SettingError(f"val_size={val_size} must be between 1 and {n - 1}")
    # random_split draws one permutation of range(n): the same indices as on the torchvision dataset.
    generator = torch.Generator().manual_seed(seed)
    train, val = random_split(range(n), [n - val_size, val_size], generator=generator)
    return Splits(
        spec,
        Path(data_dir),
        train_images,
        train_labels,
        test_images,
        test_labels,
        list(train.indices),
        list(val.indices),
    )


def folder_splits(
    folder: FolderDataset,
    val_size: int,
    seed: int = DEFAULT_SEED,
    progress: bool = False,
    log: Callable[[str], None] = lambda message: None,
) -> tuple[Splits, dict]:
    """A folder's splits, and what model.json records of its unreadable files: the training images
    less a stratified, seeded ``val_size`` for validation (data/folder_images.py reads and caches them)."""
    from .folder_images import read_folder, stratified_split

    arrays = read_folder(folder, progress, log)
    n = len(arrays.train_labels)
    if not 0 < val_size < n:
        raise SettingError(f"val_size={val_size} must be between 1 and {n - 1}: {folder.path} has {n} training images")
    train, val = stratified_split(arrays.train_labels, val_size, seed)
    images = (arrays.train_images, arrays.train_labels, arrays.test_images, arrays.test_labels)
    tensors = [torch.from_numpy(np.ascontiguousarray(values)) for values in images]
    return Splits(folder, folder.path, *tensors, train.tolist(), val.tolist()), arrays.summary()
