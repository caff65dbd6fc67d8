"""Many files at once: folders, subfolders, worker processes, streaming, and one error per bad file."""

from __future__ import annotations

import contextlib
import json

import pytest

from tests.helpers import assert_clean_error, cli, untrained_run
from tests.photos import seven


def test_predicting_a_folder_in_parallel_streams_json_lines_in_input_order(run_dir, tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    for k in range(12):
        seven(offset=(20 + 5 * k, 30)).save(folder / f"{k:02d}.png")
    (folder / "05-broken.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    parallel = cli("predict", run_dir, folder, "--jsonl", "--workers", "2")
    serial = cli("predict", run_dir, folder, "--jsonl", "--workers", "1")
    assert parallel.returncode == serial.returncode == 1  # one file could not be read
    lines = [json.loads(line) for line in parallel.stdout.splitlines()]
    assert [line["path"] for line in lines] == sorted(str(p) for p in folder.iterdir())  # input order
    assert "error" in lines[5] and lines[5]["path"].endswith("05-broken.png")
    assert lines == [json.loads(line) for line in serial.stdout.splitlines()]  # the same answers either way


@pytest.mark.parametrize("workers", [1, 2])
def test_predicting_takes_files_as_it_goes_instead_of_listing_them_all_first(run_dir, tmp_path, workers):
    from mnist_logreg.infer.batch import Options, answer_files, expand_paths

    taken = []

    def files():  # 50,000 names of missing files: each is answered at once with an error
        for number in range(50_000):
            taken.append(number)
            yield tmp_path / f"{number}.png"

    with contextlib.closing(answer_files(files(), run_dir, Options(), workers=workers)) as stream:
        first = next(stream)
        assert first["path"] == str(tmp_path / "0.png") and "error" in first
        assert len(taken) < 10_000  # the rest are still waiting to be named
    folder = tmp_path / "folder"
    folder.mkdir()
    seven().save(folder / "b.png")
    seven().save(folder / "a.png")
    named = []

    def paths():  # the folder, then 50,000 more names: a stream names each only when it gets there
        for path in [folder, *(tmp_path / f"{number}.png" for number in range(50_000))]:
            named.append(path)
            yield path

    listed = expand_paths(paths())
    assert [next(listed), next(listed)] == [folder / "a.png", folder / "b.png"]
    assert named == [folder]  # the names after the folder are not asked for yet


@pytest.mark.parametrize(("files", "processes"), [(1, 0), (3, 2)])
def test_worker_processes_start_only_when_there_are_files_to_share(run_dir, tmp_path, files, processes):
    import multiprocessing

    from mnist_logreg.infer.batch import Options, answer_files

    paths = [tmp_path / f"{n}.png" for n in range(files)]
    for path in paths:
        seven().save(path)
    with contextlib.closing(answer_files(iter(paths), run_dir, Options(), workers=2)) as stream:  # closed: no pool left
        assert "error" not in next(stream)
        assert len(multiprocessing.active_children()) == processes  # one file is read here, not in a pool
        assert len([next(stream) for _ in range(files - 1)]) == files - 1


@pytest.mark.parametrize("command", ["predict", "read"])
def test_an_empty_folder_is_named_in_its_own_error(run_dir, tmp_path, command):
    (tmp_path / "empty").mkdir()
    result = cli(command, run_dir, tmp_path / "empty")
    assert result.returncode == 1
    assert result.stderr.strip() == f"mnist-logreg: error: {tmp_path / 'empty'}: no image files in {tmp_path / 'empty'}"


@pytest.mark.parametrize("command", ["predict", "read"])
def test_subfolders_are_named_when_skipped_and_read_with_recursive(run_dir, tmp_path, command):
    folder = tmp_path / "photos"
    (folder / "more" / "deeper").mkdir(parents=True)
    seven().save(folder / "a.png")
    seven().save(folder / "more" / "b.png")
    seven().save(folder / "more" / "deeper" / "c.png")
    (folder / "loop").symlink_to(folder, target_is_directory=True)  # a link back up: never followed
    flat = cli(command, run_dir, folder, "--json")
    assert flat.returncode == 0, flat.stderr
    assert [row["path"] for row in json.loads(flat.stdout)] == [str(folder / "a.png")]
    assert flat.stderr.strip() == (
        f"mnist-logreg: note: 1 subfolder(s) not read ({folder / 'more'}); --recursive reads them too"
    )
    deep = cli(command, run_dir, folder, "--json", "--recursive")
    assert deep.returncode == 0, deep.stderr
    assert [row["path"] for row in json.loads(deep.stdout)] == [
        str(folder / "a.png"),
        str(folder / "more" / "b.png"),
        str(folder / "more" / "deeper" / "c.png"),
    ]
    assert deep.stderr == ""


@pytest.mark.parametrize("command", ["predict", "read"])
def test_a_run_folder_given_as_images_is_refused(run_dir, tmp_path, command):
    """`predict runs/mnist-default-* photo.png` with two runs: the second run is not images."""
    other = untrained_run(tmp_path / "other")
    seven().save(tmp_path / "photo.png")
    result = cli(command, run_dir, other, tmp_path / "photo.png")
    assert result.returncode == 1
    assert_clean_error(result, f"{other} is a run folder, not images: give one run, first, as RUN_DIR")


def test_one_failing_file_gets_its_error_and_other_errors_are_not_hidden():
    from mnist_logreg.images.preprocess import ImageError
    from mnist_logreg.infer.batch import result_or_error

    def bad_image():
        raise ImageError("no ink found")

    assert result_or_error({"path": "a.png"}, lambda: {"label": 7}) == {"path": "a.png", "label": 7}
    assert result_or_error({"filename": "b.png"}, bad_image) == {"filename": "b.png", "error": "no ink found"}
    with pytest.raises(ZeroDivisionError):  # a bug is not a bad file
        result_or_error({"path": "c.png"}, lambda: {"label": 1 // 0})


def test_a_folder_s_hidden_files_are_left_out_when_predicting_as_when_training(run_dir, tmp_path):
    """macOS leaves ``._name.png`` beside each copied image: bytes that are no image. Predicting a
    folder, like training on one (test_folders.py), leaves hidden files and folders out."""
    folder = tmp_path / "photos"
    (folder / ".cache").mkdir(parents=True)
    seven().save(folder / "seven.png")
    (folder / "._seven.png").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    seven().save(folder / ".cache" / "thumbnail.png")
    done = cli("predict", run_dir, folder, "--jsonl", "--recursive")
    assert done.returncode == 0, done.stderr
    assert [json.loads(line)["path"] for line in done.stdout.splitlines()] == [str(folder / "seven.png")]
