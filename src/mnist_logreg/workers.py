"""Fresh worker processes, for the jobs spread over the cores: predicting or reading many files
(infer/batch.py), decoding a folder dataset (data/folder_images.py), making training images (data/prepared.py).

Spawned, not forked: a fork copies the parent's thread pools (OpenCV's, torch's) mid-state, and
a child can wait forever on a lock no thread will release. Each worker runs OpenCV in one
thread, the processes being the parallelism, and ignores Ctrl-C: the terminal sends it to the
whole process group, and the parent answers it (its pool stops the workers); a worker left to
it would print a traceback of its own.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable


def cores() -> int:
    """The cores of this machine, and so the worker processes a job spreads over unless told (1 if unknown)."""
    return os.cpu_count() or 1


def spawned_pool(workers: int, initializer: Callable | None = None, initargs: tuple = ()):
    """A ``multiprocessing`` pool of ``workers`` spawned processes, each set up as above and then
    running ``initializer(*initargs)``; use it as a context manager."""
    context = multiprocessing.get_context("spawn")
    return context.Pool(workers, initializer=_start_worker, initargs=(initializer, initargs))


def _start_worker(initializer: Callable | None, initargs: tuple) -> None:
    import signal

    import cv2

    cv2.setNumThreads(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if initializer is not None:
        initializer(*initargs)
