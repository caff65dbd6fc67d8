"""prepared.py: images made in worker processes, in order, and Ctrl-C left to the parent."""

from __future__ import annotations

import signal

import cv2

from mnist_logreg.prepared import made_in_workers


def twice(job: int) -> list[int]:
    return [job, job]


def how_the_worker_runs(job: int) -> list[bool]:
    """Whether this process ignores Ctrl-C, and whether OpenCV runs in one thread in it."""
    return [signal.getsignal(signal.SIGINT) == signal.SIG_IGN, cv2.getNumThreads() == 1]


def test_jobs_are_made_in_order_here_or_in_processes_and_each_is_told():
    told: list[int] = []
    assert made_in_workers(twice, [1, 2, 3], told.append, 1) == [[1, 1], [2, 2], [3, 3]]
    assert made_in_workers(twice, [1, 2, 3], told.append, 2) == [[1, 1], [2, 2], [3, 3]]
    assert told == [2, 2, 2, 2, 2, 2]


def test_workers_leave_ctrl_c_to_the_parent_and_use_one_thread_each():
    """Ctrl-C reaches every process of the terminal's group. Left to a worker, it printed a
    traceback per worker above the parent's one-line answer (seen on `train --no-cache`)."""
    assert made_in_workers(how_the_worker_runs, [0, 1], lambda n: None, 2) == [[True, True], [True, True]]
