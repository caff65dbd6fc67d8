"""Corrections (``serve RUN --corrections DIR``): the images a user says the model read wrong, each kept
in ``DIR/<class>/`` (the ``train --dataset FOLDER`` layout, so ``tune --dataset DIR`` reads them too),
and the run tuned on all of them in the background (``train/tune.py``).

Each tuned run is kept in ``DIR/.runs/`` (hidden: DIR stays a dataset), written whole or not at
all; a server started again on the same DIR and run serves the newest of them. Names and paths
are the server's own: none comes from the client. A correction answered 201 is on disk: written
to a scratch file, flushed and renamed into place.
"""

from __future__ import annotations

import io
import logging
import os
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..config import Limits, TuneSettings
from ..data.catalog import DEFAULT_DATA_DIR
from ..data.folder_images import files_digest
from ..data.folders import image_files
from ..errors import SettingError, UserError
from ..images.inputs import byte_pixels
from ..images.preprocess import preprocess_file
from ..model.run_folder import RunInfo, info_digest, read_info, real_run_dir
from .bodies import ClientError, image_errors_answered

RUNS_FOLDER = ".runs"  # tuned runs, beside the classes' folders; hidden, so not read as a class
TUNED_NAME = "tuned-{:04d}"
# Pillow's name of an upload's format -> the suffix it is kept under (one the folder reader reads);
# any other format is kept as PNG.
SUFFIXES = {"PNG": ".png", "JPEG": ".jpg", "GIF": ".gif", "BMP": ".bmp", "TIFF": ".tif", "WEBP": ".webp"}

log = logging.getLogger("mnist_logreg.web")


@dataclass(frozen=True)
class TuneJob:
    """What ``POST /api/tune`` starts with: the corrections so far, as the run places them."""

    pixels: np.ndarray  # (N, 28, 28) uint8
    labels: np.ndarray  # (N,) class indices
    files: list[str]  # relative to DIR


class Corrections:
    """The corrections folder of a served run, and its one tune at a time.

    ``on_tuned(run_dir)`` is called with each tuned run, from the tuning thread, once it is whole on disk.
    """

    def __init__(
        self,
        folder: Path | str,
        run_dir: Path,
        info: RunInfo,
        limits: Limits,
        on_tuned: Callable[[Path], None],
        *,
        data_dir: Path | str = DEFAULT_DATA_DIR,
    ) -> None:
        from ..train.tune import tunable_layout

        tunable_layout(info)  # a run that cannot be tuned is refused as the server starts
        unnamable = [name for name in info.classes if Path(name).name != name or name.startswith(".")]
        if unnamable:
            raise SettingError(f"classes {unnamable} cannot name a folder, and --corrections keeps each class in one")
        self.folder = Path(folder).expanduser().resolve()
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / RUNS_FOLDER).mkdir(exist_ok=True)
        self.run_dir, self.info, self.limit = real_run_dir(run_dir), info, limits.corrections
        self.lock = threading.Lock()  # the lists below, and whether a tune runs
        self.pixels, self.labels, self.files = self._read_stored()
        self.tuning, self.error = False, None
        self.on_tuned = on_tuned
        # One thread, in order: the run made ready to tune (its data read, as the server starts),
        # then each tune. A tune asked for while the run is still being made ready waits for it.
        self.worker = ThreadPoolExecutor(1, thread_name_prefix="tune")
        self.tuner: Future = self.worker.submit(self._prepare, data_dir)

    @property
    def stored(self) -> int:
        return len(self.files)

    def add(self, content: bytes, label: str) -> dict:
        """Keep one correction; its name, its class and how many are kept now. 422 for a class the run
        does not know or an image it cannot read; 409 once the folder holds its limit."""
        if label not in self.info.classes:
            raise ClientError(422, f"label {label!r} is not one of the run's classes: {', '.join(self.info.classes)}")
        with image_errors_answered():
            pixels = byte_pixels(preprocess_file(content, self.info.layout))
        content, suffix = _kept_form(content)
        with self.lock:
            if self.stored >= self.limit:
                raise ClientError(409, f"{self.folder} holds {self.limit} corrections, the most it keeps")
            name = f"{label}/{uuid.uuid4().hex}{suffix}"
            _write_durably(self.folder / name, content)
            self.pixels.append(pixels)
            self.labels.append(self.info.classes.index(label))
            self.files.append(name)
            return {"name": name, "label": label, "stored": self.stored}

    def start_tune(self) -> dict:
        """Tune on all corrections so far, in the background. 409 while a tune runs or with none yet."""
        with self.lock:
            if self.tuning:
                raise ClientError(409, "a tune is already running; ask again when GET /api/model says it is done")
            if not self.files:
                raise ClientError(409, "no corrections yet: send some to POST /api/corrections first")
            job = TuneJob(np.stack(self.pixels), np.array(self.labels), list(self.files))
            self.tuning, self.error = True, None
        self.worker.submit(self._tune, job)
        return {"status": "tuning", "corrections": len(job.files)}

    def status(self, learnt: int) -> dict:
        with self.lock:
            return {
                "stored": self.stored,
                "learnt": learnt,
                "ready": self.tuner.done(),
                "tuning": self.tuning,
                "error": self.error,
                "limit": self.limit,
            }

    def latest_tuned(self) -> Path | None:
        """The newest run in DIR/.runs tuned from the served run (its model.json digest): a server
        started again serves what it had learnt."""
        digest = info_digest(self.run_dir)
        for run in reversed(self._tuned_runs()):
            try:
                tuned_from = read_info(run).tuned_from or {}
            except UserError:
                continue
            if tuned_from.get("model_json_sha256") == digest:
                return run
        return None

    # The tuning thread ------------------------------------------------------------------------

    def _prepare(self, data_dir):
        from ..train.tune import Tuner

        return Tuner(self.run_dir, data_dir, TuneSettings(), log=lambda message: None)

    def _tune(self, job: TuneJob) -> None:
        from ..train.tune import learning_from_all

        try:
            sizes = np.array([(self.folder / name).stat().st_size for name in job.files])
            record = {"folder": str(self.folder), "files": files_digest(job.files, sizes), "classes": self.info.classes}
            writer = learning_from_all(job.pixels, job.labels, record)
            result = self.tuner.result().tune(writer, self._next_run())
            self.on_tuned(result.run_dir)
        except UserError as error:  # the run's data gone, say: one line, shown on the page and in GET /api/model
            log.warning("tuning on %d corrections failed: %s", len(job.files), error)
            self.error = str(error)
        except Exception as error:  # ours: the traceback logged; the served model stays either way
            log.exception("tuning on %d corrections failed", len(job.files))
            self.error = f"tuning failed: {error}"
        finally:
            with self.lock:
                self.tuning = False

    def _tuned_runs(self) -> list[Path]:
        """DIR/.runs/tuned-NNNN, oldest first (the scratch folder of a tune under way is hidden, so not among them)."""
        runs = [run for run in (self.folder / RUNS_FOLDER).glob("tuned-*") if _run_number(run) is not None]
        return sorted(runs, key=_run_number)

    def _next_run(self) -> Path:
        runs = self._tuned_runs()
        return self.folder / RUNS_FOLDER / TUNED_NAME.format(_run_number(runs[-1]) + 1 if runs else 1)

    def _read_stored(self) -> tuple[list, list, list]:
        """The corrections already in DIR (a server started again): each readable image of a class the run knows."""
        pixels, labels, files = [], [], []
        for name in self.info.classes:
            if not (self.folder / name).is_dir():
                continue
            for path in image_files(str(self.folder / name)):
                try:
                    pixels.append(byte_pixels(preprocess_file(path, self.info.layout)))
                except (UserError, OSError):
                    continue  # not an image of ours, or one without ink: nothing to learn from
                labels.append(self.info.classes.index(name))
                files.append(Path(path).relative_to(self.folder).as_posix())
        return pixels, labels, files


def _kept_form(content: bytes) -> tuple[bytes, str]:
    """The upload as it is kept: as sent, where the folder reader reads its format; else as PNG."""
    with Image.open(io.BytesIO(content)) as image:
        suffix = SUFFIXES.get(image.format or "")
        if suffix:
            return content, suffix
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return buffer.getvalue(), ".png"


def _write_durably(path: Path, content: bytes) -> None:
    """Write, flush to the disk, then rename into place: a kill at any moment leaves the whole file or none."""
    path.parent.mkdir(exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    with partial.open("wb") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())
    partial.replace(path)


def _run_number(run: Path) -> int | None:
    """NNNN of a folder named as TUNED_NAME names them; None for any other name."""
    number = run.name.removeprefix("tuned-")
    return int(number) if number.isdigit() and number != run.name else None
