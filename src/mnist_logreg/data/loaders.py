"""Batches of a run's splits: the lesson's torchvision DataLoaders, and the same batches from memory
(TensorLoader), each epoch's sample of the extra images, and data-parallel shards of a batch.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch

from ..config import SPLITS
from ..errors import SettingError
from ..images.inputs import apply_input_transform
from . import prepared
from .splits import Splits


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


def to_byte_pixels(images: torch.Tensor) -> torch.Tensor:
    """Pixels in [0, 1] to uint8, each rounded to the nearest level, values outside clipped first:
    inputs.byte_pixels in torch, bit for bit."""
    return images.clamp(0, 1).mul_(255).round_().to(torch.uint8)


def as_held(images: torch.Tensor) -> torch.Tensor:
    """Transformed pixels as the training split holds them: rounded to 8 bits, back in [0, 1]."""
    return to_float_pixels(to_byte_pixels(images))


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


def transform_all(
    input_transform: str, images: torch.Tensor | list[torch.Tensor], done=lambda n: None, *, as_bytes: bool = False
) -> torch.Tensor:
    """uint8 images (N, 1, 28, 28), or a list of such parts, as one tensor with ``input_transform``
    applied, a chunk at a time: float32, or ``as_bytes`` uint8 (each pixel rounded to 8 bits).
    ``done(n)`` is told of every n transformed."""
    parts = images if isinstance(images, list) else [images]
    dtype = torch.uint8 if as_bytes else torch.float32
    out = torch.empty((sum(len(part) for part in parts), *parts[0].shape[1:]), dtype=dtype)
    at = 0
    for part in parts:
        for start in range(0, len(part), TRANSFORM_CHUNK):
            chunk = apply_input_transform(input_transform, to_float_pixels(part[start : start + TRANSFORM_CHUNK]))
            out[at : at + len(chunk)] = to_byte_pixels(chunk) if as_bytes else chunk
            at += len(chunk)
            done(len(chunk))
    return out


def held_training_split(
    input_transform: str,
    parts: list[torch.Tensor],
    *,
    keep_in: Path | str | None = None,
    log: Callable[[str], None] = lambda message: None,
    progress: bool = False,
) -> torch.Tensor:
    """The training split's parts (uint8, (N, 1, 28, 28) each) as one tensor with ``input_transform``
    applied and held as bytes (``transform_all(..., as_bytes=True)``; with ``progress``, under a bar).

    With ``keep_in`` (a data folder) it is kept there, in ``transformed/``, under a digest of the
    images themselves, the transform and the code that applies it, and read back the next time
    (mapped from the file: prepared.mapped). A default run's 200,000 training images take about a
    second to deskew; the digest a tenth of one. A change to any image, the split or the code
    makes them anew. ``log`` says which it does.
    """
    count = sum(len(part) for part in parts)
    path = key = None
    if keep_in is not None:
        key = _transformed_key(input_transform, parts)
        path = prepared.prepared_path(keep_in, TRANSFORMED, key)

        def holds(kept: dict[str, np.ndarray]) -> bool:
            return kept["images"].dtype == np.uint8 and kept["images"].shape == (count, *parts[0].shape[1:])

        kept = prepared.read_prepared(path, key, log, what="transformed images", holds=holds)
        if kept is not None:
            log(f"{count:,} training images with the input transform '{input_transform}' from {path}")
            return torch.from_numpy(kept["images"])
    log(f"applying the input transform '{input_transform}' to every image once ...")
    with prepared.progress_bar(count, input_transform, progress) as bar:
        held = transform_all(input_transform, parts, bar.update, as_bytes=True)
    if path is not None:
        prepared.write_prepared(path, key, {"images": held.numpy()})
    return held


TRANSFORMED = "transformed"  # the data folder's folder of transformed training splits


def _transformed_key(input_transform: str, parts: list[torch.Tensor]) -> str:
    """All that a transformed training split depends on, as text: its images' bytes (by digest, in
    order), the transform, and the code that applies it and rounds it to bytes."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(repr(tuple(part.shape)).encode())
        digest.update(np.ascontiguousarray(part.numpy()).data)
    return json.dumps(
        {
            "images": digest.hexdigest(),
            "transform": input_transform,
            "code": prepared.code_digest("images.inputs", "data.loaders"),
        },
        sort_keys=True,
    )


def tensor_loaders(
    splits: Splits,
    batch_size: int,
    seed: int,
    input_transform: str = "none",
    progress: bool = False,
    *,
    keep_in: Path | str | None = None,
    log: Callable[[str], None] = lambda message: None,
) -> tuple[TensorLoader, TensorLoader, TensorLoader]:
    """In-memory loaders giving the same batches as ``dataloaders(splits, batch_size, seed, input_transform)``.

    Without a transform the images stay bytes, scaled per batch; with one, every image is
    transformed once, here, a chunk at a time (with ``progress``, under a bar: on a whole dataset
    it takes seconds). The training split, digits, pen copies and outliers, is then held as bytes
    again (``held_training_split``, as the DataLoader path rounds it with ``as_held``): a quarter
    of the memory, 470 MB less in a default run; with ``keep_in``, kept in that data folder and
    read from there the next time (``log`` says which). Validation and test stay float32, as a
    saved model sees its inputs.
    """
    generator = torch.Generator().manual_seed(seed)
    groups = splits.epoch_groups()
    sample = EpochSample(splits.size("train"), groups, generator) if groups is not None else None
    if input_transform == "none":
        (train, labels), val, test = (splits.tensors(split) for split in SPLITS)
    else:  # transformed part by part: no bytes copy of the whole split
        parts, labels = splits.parts("train")
        train = held_training_split(input_transform, parts, keep_in=keep_in, log=log, progress=progress)
        held_out = [splits.parts(split) for split in ("val", "test")]
        with prepared.progress_bar(sum(len(truth) for _, truth in held_out), input_transform, progress) as bar:
            val, test = ((transform_all(input_transform, images, bar.update), truth) for images, truth in held_out)
    return (
        TensorLoader(train, labels, batch_size, shuffle=True, generator=generator, sample=sample),
        TensorLoader(*val, batch_size),
        TensorLoader(*test, batch_size),
    )
