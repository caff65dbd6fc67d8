"""data/prepared.py's images made in worker processes, in order; the workers (workers.py) leave Ctrl-C to the parent."""

from __future__ import annotations

import signal

import cv2
import numpy as np

from mnist_logreg.data.prepared import chunks, made_in_workers, read_prepared, write_prepared
from mnist_logreg.workers import spawned_pool


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


def test_chunks_cover_every_image_once_in_order_the_last_one_shorter():
    assert chunks(2500, 1000) == [(0, slice(0, 1000)), (1, slice(1000, 2000)), (2, slice(2000, 2500))]
    assert chunks(1000, 1000) == [(0, slice(0, 1000))] and chunks(0, 1000) == []


def test_workers_leave_ctrl_c_to_the_parent_and_use_one_thread_each():
    """Ctrl-C reaches every process of the terminal's group. Left to a worker, it printed a
    traceback per worker above the parent's one-line answer (seen on `train --no-cache`)."""
    assert made_in_workers(how_the_worker_runs, [0, 1], lambda n: None, 2) == [[True, True], [True, True]]


def remember(value: str) -> None:
    global REMEMBERED
    REMEMBERED = value


REMEMBERED = ""


def what_the_worker_remembers(job: int) -> str:
    return REMEMBERED


def test_a_spawned_pool_runs_its_own_initializer_after_setting_up_each_worker():
    """The pools of infer/batch.py and data/folder_images.py pass their own initializer: it runs, and the
    worker still leaves Ctrl-C to the parent."""
    with spawned_pool(2, remember, ("the run",)) as pool:
        assert pool.map(what_the_worker_remembers, [0, 1]) == ["the run", "the run"]
        assert pool.map(how_the_worker_runs, [0, 1]) == [[True, True], [True, True]]


def test_a_kept_file_is_read_back_only_for_its_key_and_only_when_it_holds_what_it_names(tmp_path):
    """No file, or another key's: nothing, silently. A damaged file, or arrays that are not what the
    key names (a check that fails, or one that finds an array missing): nothing, and a line says so."""
    path, said = tmp_path / "kind" / "kind-0.npz", []

    def read(key="k", holds=lambda kept: kept["images"].shape == (2, 3)):
        said.clear()
        return read_prepared(path, key, said.append, what="images", holds=holds)

    assert read() is None and said == []
    write_prepared(path, "k", {"images": np.ones((2, 3), np.uint8)})
    assert np.array_equal(read()["images"], np.ones((2, 3))) and said == []
    assert read(key="another") is None and said == []
    assert read(holds=lambda kept: kept["images"].shape == (5, 3)) is None
    assert said == [f"note: {path} does not hold the images it names; making it again"]
    assert read(holds=lambda kept: kept["labels"] is not None) is None and "does not hold" in said[0]
    path.write_bytes(b"not a zip file")
    assert read() is None and "is damaged" in said[0]


def test_kept_arrays_are_mapped_from_the_file_as_written_and_writing_to_them_leaves_it_alone(tmp_path):
    """Every kind of array a kept file holds comes back equal, dtype and shape included, mapped from
    the file rather than read (np.memmap): bytes, a 0-d text, an empty batch, a Fortran-ordered
    float64. Writing into what was read changes neither the file nor the next read."""
    path = tmp_path / "kind" / "kind-0.npz"
    arrays = {
        "images": np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28),
        "counts": np.array('{"drawn": 2}'),
        "none": np.zeros((0, 1, 28, 28), np.float32),
        "columns": np.asfortranarray(np.arange(6.0).reshape(2, 3)),
    }
    write_prepared(path, "k", arrays)
    read = read_prepared(path, "k", print, what="arrays", holds=lambda kept: True)
    assert sorted(read) == sorted(arrays)
    for name, array in arrays.items():
        assert isinstance(read[name], np.memmap), name
        assert read[name].dtype == array.dtype and np.array_equal(read[name], array), name
    before = path.read_bytes()
    read["images"][:] = 0
    assert path.read_bytes() == before
    assert np.array_equal(
        read_prepared(path, "k", print, what="arrays", holds=lambda kept: True)["images"], arrays["images"]
    )
