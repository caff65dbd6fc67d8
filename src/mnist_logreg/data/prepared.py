"""Training images made by code once and kept in the data folder: the outliers of "not a digit"
(data/outliers.py), the digits redrawn with other pens (data/pens.py), a training split with its
input transform applied (data/loaders.py), and the replay pool a run is tuned with (train/tune.py).

Making them takes seconds; reading them back, a fraction of one: the arrays are mapped from the
file, not copied (``mapped``). Each file is named after a digest of its ``key``, the text of all
it depends on (the seed, the layout, the source files' checksums, the code that makes them), and
holds that key: a file made by other code or for other settings is never read as this one. Files
are written atomically; a damaged one (cut short, or no longer a zip file) is made again; only
the newest KEPT of each kind stay.
"""

from __future__ import annotations

import hashlib
import importlib.util
import struct
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..files import written_atomically
from ..images.inputs import SIDE
from ..images.layout import Layout
from ..workers import spawned_pool

KEPT = 4  # files of one kind kept, the newest: one per seed, layout or version of the code in use


@dataclass(frozen=True)
class Making:
    """How a run's extra training images are made and kept (outliers.training_outliers,
    pens.training_copies): the layout they are placed in (MNIST's unless told), what is said and
    shown while they are made, whether they are kept in the data folder for the next run, and
    over how many processes where they are not."""

    layout: Layout = field(default_factory=Layout)
    log: Callable[[str], None] = print
    progress: bool = False
    cache: bool = True
    workers: int = 1


DEFAULT_MAKING = Making()  # MNIST's layout, said with print, no bar, kept for the next run, in this process


PACKAGE = __package__.partition(".")[0]  # "mnist_logreg", whose modules code_digest names


def code_digest(*modules: str) -> str:
    """A digest of these modules' source (dotted names in the package, as "data.pens"): a change to
    them makes new files."""
    digest = hashlib.sha256()
    for name in modules:
        digest.update(Path(importlib.util.find_spec(f"{PACKAGE}.{name}").origin).read_bytes())
    return digest.hexdigest()


def prepared_path(data_dir: Path | str, kind: str, key: str) -> Path:
    """Where the images of ``kind`` ("outliers", "pens", "transformed", "replay") made for ``key`` are kept."""
    return Path(data_dir) / kind / f"{kind}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.npz"


def read_prepared(
    path: Path, key: str, log: Callable[[str], None], *, what: str, holds: Callable[[dict[str, np.ndarray]], bool]
) -> dict[str, np.ndarray] | None:
    """The arrays kept at ``path`` for ``key``; None where there are none, or none usable: a damaged
    file, or arrays that ``holds`` finds are not ``what`` the key names (each said in a line)."""
    if not path.is_file():
        return None
    try:
        with zipfile.ZipFile(path) as archive, path.open("rb") as raw:  # one opening for the key and every array
            with archive.open("key.npy") as stream:
                if str(np.lib.format.read_array(stream, allow_pickle=False)) != key:
                    return None
            arrays = {
                member.removesuffix(".npy"): mapped(archive, raw, member)
                for member in archive.namelist()
                if member != "key.npy"
            }
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
        log(f"note: {path} is damaged ({type(error).__name__}); making it again")
        return None
    if not _holds(holds, arrays):
        log(f"note: {path} does not hold the {what} it names; making it again")
        return None
    return arrays


def mapped(archive: zipfile.ZipFile, raw, member: str) -> np.ndarray:
    """The array ``member`` ("images.npy") of an .npz open as ``archive`` and as the binary file
    ``raw`` (np.savez's, which stores members uncompressed), mapped from the file rather than read
    into memory: its pages come from the system's file cache as they are used, with nothing copied
    (reading a default run's 200,000 images took 0.1 to 0.6 s, most of it fresh memory). Private to
    this process: writing to it changes nothing on disk."""
    info = archive.getinfo(member)
    if info.compress_type != zipfile.ZIP_STORED:
        raise ValueError(f"{member} is compressed")
    with archive.open(info) as stream:
        version = np.lib.format.read_magic(stream)
        header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran_order, dtype = header(stream)
        header_size = stream.tell()
    raw.seek(info.header_offset)  # the member's local header: 30 bytes, then its name and extra field
    name_size, extra_size = struct.unpack("<HH", raw.read(30)[26:30])
    start = info.header_offset + 30 + name_size + extra_size + header_size
    order = "F" if fortran_order else "C"
    return np.memmap(raw, dtype=dtype, mode="c", offset=start, shape=shape, order=order)


def _holds(holds: Callable[[dict[str, np.ndarray]], bool], arrays: dict[str, np.ndarray]) -> bool:
    """Whether ``holds(arrays)``; a missing array or one that cannot be read as expected is a no."""
    try:
        return bool(holds(arrays))
    except (KeyError, ValueError, TypeError):
        return False


def write_prepared(path: Path, key: str, arrays: dict[str, np.ndarray]) -> None:
    """Keep ``arrays`` at ``path`` (written atomically), and only the newest KEPT files of its kind beside it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with written_atomically(path) as partial, partial.open("wb") as handle:
        np.savez(handle, key=np.array(key), **arrays)
    kind = path.name.split("-")[0]
    older = sorted(path.parent.glob(f"{kind}-*.npz"), key=lambda p: p.stat().st_mtime, reverse=True)
    for stale in older[KEPT:]:
        stale.unlink(missing_ok=True)


def progress_bar(total: int, what: str, shown: bool):
    """A progress bar over the images made (tqdm's; nothing drawn unless ``shown``)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=what, unit="img", leave=False, disable=not shown, mininterval=0.5)


def made_in_workers(make: Callable, jobs: Sequence, done: Callable[[int], None], workers: int) -> list[np.ndarray]:
    """``make(job)`` for each of ``jobs``, in order: one array of images per job, ``done(n)`` told of
    each job's n, and spread over ``workers`` processes (workers.py). Each job draws from its own
    random stream (``chunks``), so the result is the same however many make it."""
    workers = min(workers, len(jobs))
    if workers <= 1:
        return [_reported(make(job), done) for job in jobs]
    with spawned_pool(workers) as pool:
        return [_reported(made, done) for made in pool.imap(make, jobs)]


def images_made_in_workers(make: Callable, jobs: Sequence, done: Callable[[int], None], workers: int) -> np.ndarray:
    """``made_in_workers`` for jobs that each make (n, 28, 28) uint8 images: all of them, in order, in
    one array; none (0, 28, 28) for no job."""
    made = made_in_workers(make, jobs, done, workers)
    return np.concatenate(made) if made else np.empty((0, SIDE, SIDE), dtype=np.uint8)


def seeded_choice(total: int, count: int, stream: list[int]) -> np.ndarray:
    """The indices of ``count`` of ``total`` items (all of them, where it asks for more), chosen by the
    random ``stream`` and sorted: a seeded share of a pool, in the order its source holds them."""
    return np.sort(np.random.default_rng(stream).permutation(total)[:count])


def chunks(count: int, size: int) -> list[tuple[int, slice]]:
    """(index, slice) of each run of ``size`` of ``count`` images, the last one shorter: the unit of
    work of ``made_in_workers``, each made from a random stream of its own (its index among the
    seed's), so that no chunk depends on another."""
    return [(n, slice(start, min(start + size, count))) for n, start in enumerate(range(0, count, size))]


def _reported(made: np.ndarray, done: Callable[[int], None]) -> np.ndarray:
    done(len(made))
    return made
