"""Splits and loaders: the lesson's torchvision DataLoaders, and the same batches from memory.

torchvision is imported only where it is used (the lesson's DataLoader path): importing it
costs about a second and 170 MB, and the in-memory path reads the same verified files directly.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import random_split

from .config import DEFAULT_SEED, LESSON_VAL_SIZE, SPLITS
from .datasets import DEFAULT_DATA_DIR, DatasetSpec, IdxFile, get_spec
from .errors import DataError, SettingError
from .fetch import fetch, missing_files
from .folders import FolderDataset
from .idx import read_idx
from .inputs import apply_input_transform


@dataclass
class Splits:
    """The lesson's three sets: a seeded random_split of the training file, and the test file.
    For a folder dataset (folders.py), the folder's training and test images, split stratified.

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
    # Training digits redrawn with other pens (pens.py), trained on after the digits: (N, 28, 28)
    # uint8, and their labels (N,) int64.
    copies: torch.Tensor | None = None
    copy_labels: torch.Tensor | None = None
    # Non-digits trained on as one more class, after the copies (outliers.py): (N, 28, 28) uint8.
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

        ``input_transform`` (one of config.INPUT_TRANSFORMS, applied by inputs.py) follows ToTensor.
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
    less a stratified, seeded ``val_size`` for validation (folder_data.py reads and caches them)."""
    from .folder_data import read_folder, stratified_split

    arrays = read_folder(folder, progress, log)
    n = len(arrays.train_labels)
    if not 0 < val_size < n:
        raise SettingError(f"val_size={val_size} must be between 1 and {n - 1}: {folder.path} has {n} training images")
    train, val = stratified_split(arrays.train_labels, val_size, seed)
    images = (arrays.train_images, arrays.train_labels, arrays.test_images, arrays.test_labels)
    tensors = [torch.from_numpy(np.ascontiguousarray(values)) for values in images]
    return Splits(folder, folder.path, *tensors, train.tolist(), val.tolist()), arrays.summary()


def dataloaders(splits: Splits, batch_size: int, seed: int, input_transform: str = "none"):
    """The lesson's torchvision DataLoaders (train shuffled with a seeded generator).

    ``input_transform`` is applied to each image after ToTensor, one image at a time.
    """
    from torch.utils.data import DataLoader

    train, val, test = splits.torchvision_sets(input_transform)
    generator = torch.Generator().manual_seed(seed)
    groups = splits.epoch_groups()
    if groups is not None:  # each epoch, the digits and a fresh sample of the copies and outliers
        sampler = EpochSample(splits.size("train"), groups, generator)
        return (
            DataLoader(train, batch_size, sampler=sampler, generator=generator),
            DataLoader(val, batch_size),
            DataLoader(test, batch_size),
        )
    return (
        DataLoader(train, batch_size, shuffle=True, generator=generator),
        DataLoader(val, batch_size),
        DataLoader(test, batch_size),
    )


def to_float_pixels(images: torch.Tensor) -> torch.Tensor:
    """uint8 pixels to float32 in [0, 1], bit for bit what ToTensor computes (a division, not a * 1/255)."""
    return images.to(torch.float32).div_(255)


def shard_of(rank: int, world_size: int) -> slice:
    """The images of a batch that process ``rank`` of ``world_size`` trains on: every world_size-th from rank.

    The shards of a batch partition it, and their sizes differ by at most one.
    """
    return slice(rank, None, world_size)


def shard_batches(loader, rank: int, world_size: int):
    """``loader`` yielding only process ``rank``'s shard of each of its batches.

    A TensorLoader gathers just that shard; any other loader's batches are cut after loading.
    Every shard must hold an image: the batch size and the last, short batch must both be at
    least ``world_size``.
    """
    if world_size == 1:
        return loader
    size = loader.batch_size
    images = epoch_size(loader)
    for what, n in (("the batch size", size), ("the last batch of an epoch", images % size or size)):
        if n < world_size:
            raise SettingError(
                f"{what} is {n} images, fewer than the {world_size} processes: each process needs one; "
                "choose another --batch-size"
            )
    if isinstance(loader, TensorLoader):
        return TensorLoader(
            loader.images,
            loader.labels,
            size,
            loader.shuffle,
            loader.generator,
            shard=(rank, world_size),
            sample=loader.sample,
        )
    return ShardedBatches(loader, rank, world_size)


class ShardedBatches:
    """Each batch of ``loader`` cut to one process's shard (the DataLoader path of data-parallel training)."""

    def __init__(self, loader, rank: int, world_size: int) -> None:
        self.loader, self.shard = loader, shard_of(rank, world_size)
        self.generator = getattr(loader, "generator", None)  # the shuffling state a checkpoint keeps

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        for images, labels in self.loader:
            yield images[self.shard], labels[self.shard]


class EpochSample(torch.utils.data.Sampler):
    """The training images of one epoch, in a seeded order: all of the first ``always`` (the
    digits), and a fresh sample of each group after them, drawn without replacement: ``groups``
    lists (pool size, drawn each epoch), in the order the pools follow the digits.

    Every draw comes from ``generator``, so that a DataLoader with this sampler and a TensorLoader
    given the same sample (``TensorLoader(sample=...)``) yield the same batches, and a checkpoint
    of the generator's state resumes the very next epoch. Over a run each image of a pool is
    drawn about epochs × drawn / pool times.
    """

    def __init__(self, always: int, groups: list[tuple[int, int]], generator: torch.Generator) -> None:
        self.always, self.groups, self.generator = always, list(groups), generator

    def __len__(self) -> int:
        return self.always + sum(drawn for _, drawn in self.groups)

    def order(self) -> torch.Tensor:
        """One epoch's indices (len(self),) int64, drawing from the generator."""
        chosen, start = [torch.arange(self.always)], self.always
        for pool, drawn in self.groups:
            picked = torch.randperm(pool, generator=self.generator)[:drawn] if drawn < pool else torch.arange(pool)
            chosen.append(start + picked)
            start += pool
        epoch = torch.cat(chosen)
        return epoch[torch.randperm(len(epoch), generator=self.generator)]

    def __iter__(self) -> Iterator[int]:
        yield from self.order().tolist()


def epoch_size(loader) -> int:
    """How many training images one epoch of ``loader`` (a TensorLoader or a DataLoader) yields."""
    if isinstance(loader, TensorLoader):
        return len(loader.labels) if loader.sample is None else len(loader.sample)
    return len(loader.sampler)


class TensorLoader:
    """Batches cut by index from tensors held in memory.

    uint8 images are kept as bytes (a quarter of the memory, and a quarter of the bytes to
    gather per batch) and each batch is scaled to [0, 1] as ToTensor does; float images are
    yielded as they are.

    With ``shuffle`` it draws from ``generator`` exactly as a DataLoader with that generator
    does (one int64 for the worker base seed, then a permutation), so for the same seed it
    yields the same batches in the same order as the lesson's DataLoader, only much faster.

    ``shard=(rank, world_size)`` yields only this process's shard of every batch (see
    ``shard_of``), for data-parallel training: each process draws the same permutation and
    gathers just its own images.

    ``sample=EpochSample(...)`` (drawing from the same ``generator``) makes each epoch the images
    it draws, as a DataLoader with that sampler does.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        batch_size: int,
        shuffle: bool = False,
        generator: torch.Generator | None = None,
        *,
        shard: tuple[int, int] = (0, 1),
        sample: EpochSample | None = None,
    ) -> None:
        if len(images) != len(labels):
            raise SettingError(f"{len(images)} images but {len(labels)} labels")
        self.images, self.labels = images, labels
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.generator = generator
        self.shard = shard
        self.sample = sample

    def __len__(self) -> int:
        return (epoch_size(self) + self.batch_size - 1) // self.batch_size  # the last batch may be short

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n, size = len(self.labels), self.batch_size
        mine = shard_of(*self.shard)
        if self.sample is not None:
            torch.empty((), dtype=torch.int64).random_(generator=self.generator)  # the DataLoader's worker seed
            order = self.sample.order().to(self.images.device)
            for start in range(0, len(order), size):
                index = order[start : start + size][mine]
                yield self._pixels(self.images.index_select(0, index)), self.labels.index_select(0, index)
            return
        if not self.shuffle:
            for start in range(0, n, size):
                yield self._pixels(self.images[start : start + size][mine]), self.labels[start : start + size][mine]
            return
        # The draws a DataLoader makes, in its order: a base seed for workers, the permutation,
        # and one more permutation that RandomSampler computes when it runs dry (its tail).
        torch.empty((), dtype=torch.int64).random_(generator=self.generator)
        generator = self.generator
        if generator is None:  # as RandomSampler: a fresh generator seeded from the global one
            generator = torch.Generator().manual_seed(int(torch.empty((), dtype=torch.int64).random_().item()))
        order = torch.randperm(n, generator=generator).to(self.images.device)
        for start in range(0, n, size):
            if start + size > n:  # a short last batch: the sampler ran dry before it was cut
                torch.randperm(n, generator=generator)
            index = order[start : start + size][mine]
            yield self._pixels(self.images.index_select(0, index)), self.labels.index_select(0, index)
        if n % size == 0:
            torch.randperm(n, generator=generator)

    def _pixels(self, images: torch.Tensor) -> torch.Tensor:
        return to_float_pixels(images) if images.dtype == torch.uint8 else images

    def to(self, device: torch.device | str) -> TensorLoader:
        """The same loader with its tensors on ``device`` (the permutation stays on the CPU)."""
        return TensorLoader(
            self.images.to(device),
            self.labels.to(device),
            self.batch_size,
            self.shuffle,
            self.generator,
            shard=self.shard,
            sample=self.sample,
        )


TRANSFORM_CHUNK = 1024  # images per vectorised transform call: bounds the working memory on whole datasets (4096: +118 MB peak, and slower)


def transform_all(input_transform: str, images: torch.Tensor | list[torch.Tensor], done=lambda n: None) -> torch.Tensor:
    """uint8 images (N, 1, 28, 28), or a list of such parts, as one float32 tensor with
    ``input_transform`` applied, a chunk at a time; ``done(n)`` is told of every n transformed."""
    parts = images if isinstance(images, list) else [images]
    out = torch.empty((sum(len(part) for part in parts), *parts[0].shape[1:]), dtype=torch.float32)
    at = 0
    for part in parts:
        for start in range(0, len(part), TRANSFORM_CHUNK):
            chunk = to_float_pixels(part[start : start + TRANSFORM_CHUNK])
            out[at : at + len(chunk)] = apply_input_transform(input_transform, chunk)
            at += len(chunk)
            done(len(chunk))
    return out


def tensor_loaders(
    splits: Splits, batch_size: int, seed: int, input_transform: str = "none", progress: bool = False
) -> tuple[TensorLoader, TensorLoader, TensorLoader]:
    """In-memory loaders giving the same batches as ``dataloaders(splits, batch_size, seed, input_transform)``.

    Without a transform the images stay bytes, scaled per batch; with one, every image is
    transformed once, here, in one vectorised call per split, and held as float32 (with
    ``progress``, under a bar: on a whole dataset it takes seconds).
    """
    from tqdm.auto import tqdm

    generator = torch.Generator().manual_seed(seed)
    extras = splits.extra_count  # pen copies and outliers, trained on after the digits
    total = sum(splits.size(split) for split in SPLITS) + extras if input_transform != "none" else 0
    bar = tqdm(total=total, desc=input_transform, unit="img", leave=False, disable=not (progress and total))

    def images(split: str) -> tuple[torch.Tensor, torch.Tensor]:
        if input_transform == "none":
            return splits.tensors(split)
        parts, labels = splits.parts(split)  # transformed part by part: no bytes copy of the whole split
        return transform_all(input_transform, parts, bar.update), labels

    groups = splits.epoch_groups()
    sample = EpochSample(splits.size("train"), groups, generator) if groups is not None else None
    with bar:
        return (
            TensorLoader(*images("train"), batch_size, shuffle=True, generator=generator, sample=sample),
            TensorLoader(*images("val"), batch_size),
            TensorLoader(*images("test"), batch_size),
        )
