"""Many image files at once: the paths to read, and the worker processes that predict or read them.

Each file gets its own answer or its own error (``result_or_error``, which the API's batches
use too): one bad file never stops the others.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ..config import TOP_K
from ..data.folders import image_files
from ..errors import SettingError
from ..images.preprocess import ImageError, open_image
from ..model.linear import load_weights, with_threshold
from ..model.run_folder import INFO_FILE
from ..workers import spawned_pool
from .classify import kept, predict_image_file
from .number import draw_boxes, read_image_file


def result_or_error(
    name: dict, answer: Callable[[], dict], errors: tuple[type[Exception], ...] = (ImageError,)
) -> dict:
    """``name`` (``{"path": ...}`` or ``{"filename": ...}``) with the ``answer``, or with the
    ``error`` it raised, if one of ``errors``: the caller carries on with the next file."""
    try:
        return name | answer()
    except errors as error:
        return name | {"error": str(error)}


@dataclass(frozen=True)
class Options:
    """What each file's answer is, and what is written beside it."""

    job: str = "predict"  # or "read": the whole number in each image
    top_k: int = TOP_K
    reject: tuple[float | None, bool] = (None, False)  # with_threshold's (reject_below, no_reject)
    save_preprocessed: Path | None = None  # predict: the 28×28 image the model saw, per file
    explain: Path | None = None  # predict: each image's evidence maps
    save_boxes: Path | None = None  # read: each image with its digits' boxes


def answer_files(
    paths: Iterable[Path | PathError], run_dir: Path, options: Options, workers: int = 1
) -> Iterator[dict]:
    """Each file's answer, in input order, as a stream: ``{"path", ...answer}`` or ``{"path", "error"}``.

    With ``workers`` > 1, files are decoded, cleaned and classified in that many processes (no
    more than there are files), each loading the run's weights once; answers come back in input
    order as they are ready, so a caller that writes each one out keeps its memory flat over any
    number of files.
    """
    jobs = enumerate(paths)  # consumed as the workers take them: no list of every file
    first = list(itertools.islice(jobs, workers))  # starting a process costs more than one file
    jobs = itertools.chain(first, jobs)
    workers = min(workers, len(first))
    if workers <= 1:
        _start_worker(Path(run_dir), options)
        yield from map(_answer_one, jobs)
        return
    with spawned_pool(workers, _start_worker, (Path(run_dir), options)) as pool:
        yield from pool.imap(_answer_one, jobs, chunksize=8)


_worker: dict = {}  # what one process holds: the weights, the run's RunInfo and the options, loaded once


def _start_worker(run_dir: Path, options: Options) -> None:
    import cv2

    cv2.setNumThreads(1)  # as a spawned worker has it (workers.py), in this process too
    weights, info = load_weights(run_dir)
    _worker.update(weights=with_threshold(weights, *options.reject), info=info, options=options)


def _answer_one(job: tuple[int, Path | PathError]) -> dict:
    number, path = job
    if isinstance(path, PathError):
        return {"path": str(path.path), "error": path.error}
    job = _predict_one if _worker["options"].job == "predict" else _read_one
    return result_or_error({"path": str(path)}, lambda: job(path, f"{number:04d}-{path.stem}.png"))


def _predict_one(path: Path, name: str) -> dict:
    weights, info, options = _worker["weights"], _worker["info"], _worker["options"]
    result = predict_image_file(path, weights, info, options.top_k)
    return kept(
        result, name, weights, info.classes, save_preprocessed=options.save_preprocessed, explain=options.explain
    )


def _read_one(path: Path, name: str) -> dict:
    options = _worker["options"]
    reading = read_image_file(path, _worker["weights"], _worker["info"], options.top_k)
    if options.save_boxes:
        draw_boxes(open_image(path), reading).save(options.save_boxes / name)
    return reading


@dataclass(frozen=True)
class PathError:
    """A path given to predict or read that holds no image to read, and why."""

    path: Path
    error: str


def check_image_paths(paths: Iterable[Path]) -> None:
    """Refuse a run folder given where images are expected (a glob such as runs/* matched two runs)."""
    for path in paths:
        if path.is_dir() and (path / INFO_FILE).is_file():
            raise SettingError(
                f"{path} is a run folder, not images: give one run, first, as RUN_DIR (runs/latest is the newest)"
            )


def expand_paths(
    paths: Iterable[str | Path], recursive: bool = False, skipped: list[Path] | None = None
) -> Iterator[Path | PathError]:
    """Files as given, and the image files inside any folder (folders.image_files: by name, hidden
    ones left out), as a stream. A folder without images yields a PathError. Subfolders are
    entered with ``recursive``, and otherwise appended to ``skipped``.
    """
    for path in map(Path, paths):
        if not path.is_dir():
            yield path
            continue
        found, subfolders = False, []
        for file in image_files(str(path), recursive, subfolders):
            found = True
            yield Path(file)
        if skipped is not None:
            skipped += map(Path, subfolders)
        if not found:
            yield PathError(path, f"no image files in {path}" + (" or its subfolders" if recursive else ""))
