"""Reading a folder dataset's images once, then fast: decoded in worker processes, cached beside them.

Each image is opened and placed in 28×28 as the folder's layout says (``preprocess_array``), in
as many processes as there are cores, with a progress bar. The result is kept in one file in the
folder, ``.mnist-logreg-cache-<layout>.npz``, keyed by each file's path, size and modification
time: the next read decodes only the files added or changed since, and forgets those removed.
Nothing else is written into the folder, and with ``cache=False`` nothing at all.

The splits are stratified and seeded: every class keeps its share of the test images (where the
folder has no test/ of its own) and of the validation images.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError, SettingError
from ..files import written_atomically
from ..images.inputs import SIDE, byte_pixels
from ..workers import cores, spawned_pool
from .arrays import DataArrays
from .folders import TEST_SEED, FolderDataset, held_out_size

CACHE_FILE = ".mnist-logreg-cache-{layout}.npz"
IN_PROCESS = 256  # fewer images to decode than this: starting worker processes would cost more
CHUNK = 64  # images a worker decodes per task: enough to keep the pool's overhead small
UNREADABLE_LISTED = 100  # unreadable files named in model.json; the count is always complete


@dataclass
class FolderArrays(DataArrays):
    """A folder's images as the model's 28×28 inputs, uint8, and which files could not be read."""

    unreadable: list[dict]  # {"path", "error"}, relative to the folder
    files: str  # files_digest of every file read: which images these are, wherever the folder lies

    def summary(self) -> dict:
        """What model.json records of the files: which they were, and those left out."""
        return {
            "files": self.files,
            "unreadable": len(self.unreadable),
            "unreadable_files": self.unreadable[:UNREADABLE_LISTED],
        }


def files_digest(names: list[str], sizes: np.ndarray) -> str:
    """A digest of the files' paths (relative to the folder) and sizes: the same for the same images
    after the folder is moved or copied, different once one is added, removed, renamed or changed in size."""
    listing = "\n".join(f"{name}\t{size}" for name, size in zip(names, sizes.tolist(), strict=True))
    return "sha256:" + hashlib.sha256(listing.encode("utf-8", "surrogateescape")).hexdigest()


def check_same_files(source: dict, files: str, folder: Path) -> None:
    """Refuse a folder whose ``files`` (their digest) are no longer those a run recorded in ``source``,
    its model.json's record (runs from before the digest was recorded are checked by their class
    names alone)."""
    recorded = source.get("files")
    if recorded is not None and recorded != files:
        raise DataError(
            f"{folder} does not hold the images this run was trained on: files were added, removed, "
            "renamed or changed since, so its splits would not be the run's"
        )


def read_folder(
    folder: FolderDataset, progress: bool = False, log: Callable[[str], None] = lambda message: None
) -> FolderArrays:
    """Every image of ``folder`` decoded (or taken from the cache), and split into train and test.

    Raises DataError for a class none of whose files could be read.
    """
    files = [*folder.train_files, *folder.test_files]
    names = [name for name, _ in files]
    pixels, errors, sizes = _decoded(names, folder, progress, log)
    labels = np.array([label for _, label in files], dtype=np.int64)
    readable = errors == ""
    unreadable = [{"path": files[i][0], "error": str(errors[i])} for i in np.flatnonzero(~readable)]
    if unreadable:
        shown = ", ".join(f"{u['path']} ({u['error']})" for u in unreadable[:3])
        log(
            f"{len(unreadable)} file(s) could not be read and are left out: {shown}{', ...' if len(unreadable) > 3 else ''}"
        )
    in_train = np.arange(len(files)) < len(folder.train_files)
    for label, name in enumerate(folder.classes):
        if not (readable & in_train & (labels == label)).any():
            raise DataError(f"class {name!r} has no readable image in {folder.path}: every one of its files failed")
    train = readable & in_train
    test = readable & ~in_train
    if not folder.has_test_folder:  # hold out a stratified share of the readable images
        kept = np.flatnonzero(train)
        rest, held = stratified_split(labels[kept], held_out_size(len(kept)), TEST_SEED)
        train, test = np.zeros_like(train), np.zeros_like(test)
        train[kept[rest]], test[kept[held]] = True, True
    digest = files_digest(names, sizes)
    return FolderArrays(pixels[train], labels[train], pixels[test], labels[test], unreadable, digest)


def stratified_split(labels: np.ndarray, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(the rest, ``size`` chosen) indices into ``labels``, each sorted: each class gives its share
    of ``size`` (largest remainders first), drawn at random with ``seed``, and keeps one image at least."""
    if not 0 < size < len(labels):
        raise SettingError(f"cannot hold out {size} of {len(labels)} images: choose between 1 and {len(labels) - 1}")
    classes, counts = np.unique(labels, return_counts=True)
    exact = counts * size / len(labels)
    take = np.minimum(np.floor(exact).astype(int), counts - 1)
    for k in np.argsort(-(exact - take), kind="stable"):  # the largest remainders take one more
        if take.sum() >= size:
            break
        take[k] += take[k] < counts[k] - 1
    if take.sum() < size:  # classes too small to give their share and keep an image each
        raise SettingError(f"cannot hold out {size} of {len(labels)} images and keep one of every class to train on")
    rng = np.random.default_rng(seed)
    chosen = np.concatenate(
        [rng.permutation(np.flatnonzero(labels == c))[:k] for c, k in zip(classes, take, strict=True)]
    )
    chosen = np.sort(chosen)
    return np.setdiff1d(np.arange(len(labels)), chosen), chosen


# ---------------------------------------------------------------------------------------------
# Decoding, cached
# ---------------------------------------------------------------------------------------------


def _decoded(names: list[str], folder: FolderDataset, progress: bool, log) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pixels (N, 28, 28) uint8, errors (N,) str, "" where the file was read, sizes (N,) in bytes) of each named file."""
    root = str(folder.path)
    stats = [os.stat(os.path.join(root, name)) for name in names]  # strings: a Path per file costs seconds
    sizes = np.array([stat.st_size for stat in stats], dtype=np.int64)
    times = np.array([stat.st_mtime_ns for stat in stats], dtype=np.int64)
    pixels = np.zeros((len(names), SIDE, SIDE), np.uint8)
    errors = np.full(len(names), "", dtype=object)
    cache = _read_cache(folder) if folder.cache else None
    found = np.zeros(len(names), bool)
    if cache is not None:  # a file is taken from the cache when its name, size and time all match
        position = {name: i for i, name in enumerate(cache["names"].tolist())}
        where = np.array([position.get(name, -1) for name in names], dtype=np.int64)
        found = where >= 0
        found[found] = (cache["sizes"][where[found]] == sizes[found]) & (cache["mtimes"][where[found]] == times[found])
        pixels[found] = cache["pixels"][where[found]]
        errors[found] = cache["errors"][where[found]]
    missing = np.flatnonzero(~found)
    if len(missing):
        what = f"{len(missing)} of {len(names)} images" if found.any() else f"{len(names)} images"
        log(f"reading {what} of {folder.path} ({folder.layout_name} layout) ...")
        decoded = _decode_all([names[i] for i in missing], folder, progress)
        for i, (image, error) in zip(missing, decoded, strict=True):
            pixels[i], errors[i] = image, error
    if folder.cache and (len(missing) or cache is None or len(cache["names"]) != len(names)):
        _write_cache(folder, names, sizes=sizes, times=times, pixels=pixels, errors=errors)
    return pixels, errors.astype(str), sizes


def _cache_path(folder: FolderDataset) -> Path:
    return folder.path / CACHE_FILE.format(layout=folder.layout_name)


def _read_cache(folder: FolderDataset) -> dict | None:
    """The cache file's arrays: names, sizes, mtimes, pixels and errors; None if there is none or it is unreadable."""
    try:
        with np.load(_cache_path(folder), allow_pickle=False) as cache:
            arrays = {key: cache[key] for key in ("names", "sizes", "mtimes", "pixels", "errors")}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
        return None
    if len({len(values) for values in arrays.values()}) != 1:
        return None  # not one row per file: a file of another making
    return arrays


def _write_cache(folder: FolderDataset, names: list[str], *, sizes, times, pixels, errors) -> None:
    with written_atomically(_cache_path(folder)) as partial, partial.open("wb") as handle:
        np.savez(
            handle,
            names=np.array(names, dtype=str),
            sizes=sizes,
            mtimes=times,
            pixels=pixels,
            errors=np.array(errors, dtype=str),
        )


def _decode_all(names: list[str], folder: FolderDataset, progress: bool):
    """(pixels, error) of each file, in order: in worker processes where there are many."""
    from tqdm import tqdm

    bar = tqdm(total=len(names), unit="img", desc="decoding", disable=not progress, leave=False)
    chunks = [names[start : start + CHUNK] for start in range(0, len(names), CHUNK)]
    workers = min(cores(), len(chunks))
    with bar:
        if len(names) < IN_PROCESS or workers <= 1:
            _start_worker(folder)
            results = map(_decode_chunk, chunks)
            for chunk in results:
                bar.update(len(chunk))
                yield from chunk
            return
        with spawned_pool(workers, _start_worker, (folder,)) as pool:
            for chunk in pool.imap(_decode_chunk, chunks):
                bar.update(len(chunk))
                yield from chunk


_worker: dict = {}


def _start_worker(folder: FolderDataset) -> None:
    import cv2

    cv2.setNumThreads(1)  # as a spawned worker has it (workers.py), in this process too
    _worker["folder"] = folder


def _decode_chunk(names: list[str]) -> list[tuple[np.ndarray, str]]:
    return [_decode(_worker["folder"], name) for name in names]


def _decode(folder: FolderDataset, name: str) -> tuple[np.ndarray, str]:
    from ..images.preprocess import ImageError, preprocess_file

    try:
        pixels = preprocess_file(folder.path / name, folder.layout)
    except (ImageError, OSError) as error:  # OSError: a file that cannot be opened at all
        return np.zeros((SIDE, SIDE), np.uint8), str(error) or "unreadable"
    return byte_pixels(pixels), ""
