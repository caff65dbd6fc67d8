"""Every command on a run trained on a folder of one's own images, and the folder's bad inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from tests.helpers import SHAPES, assert_clean_error, cli, draw_shape, write_shape_folder
from tests.photos import image_bytes
from tests.servers import multipart, request, serving


@pytest.fixture(scope="module")
def shapes_run(tmp_path_factory):
    """(the folder, the run) of the default preset trained on 3 classes of drawn shapes."""
    root = tmp_path_factory.mktemp("folder")
    folder = write_shape_folder(root / "shapes", per_class=40)
    trained = cli("train", "--dataset", folder, "--out", root / "runs" / "shapes", "--no-progress", "--epochs", "4")
    assert trained.returncode == 0, trained.stderr
    return folder, root / "runs" / "shapes"


def test_a_folder_trains_with_its_classes_splits_and_layout_recorded(shapes_run):
    folder, run = shapes_run
    info = json.loads((run / "model.json").read_text())
    assert info["dataset"] == "shapes" and info["classes"] == list(SHAPES)
    assert info["layout"] == {"box": 20, "centre_of_mass": True, "cleaned": True}
    assert info["source"]["folder"] == str(folder) and info["source"]["layout"] == "digits"
    assert info["source"]["unreadable"] == 0 and info["reject"] is None
    assert info["splits"] == {"train": 86, "val": 17, "test": 17}  # 120 images: a seventh held out, a sixth of the rest
    assert info["input_transform"] == "deskew" and info["features"] == "pixel-pairs"  # the default preset
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test_acc"] >= 0.8 and len(metrics["confusion"]) == 3
    assert [row["class"] for row in metrics["per_class"]] == list(SHAPES)


def test_a_small_folder_trains_in_smaller_batches_says_so_and_records_it(tmp_path):
    folder = write_shape_folder(tmp_path / "shapes", per_class=20)  # 60 images: 43 to train on
    trained = cli("train", "--dataset", folder, "--out", tmp_path / "run", "--no-progress", "--no-report")
    assert trained.returncode == 0, trained.stderr
    said = [line for line in trained.stderr.splitlines() if "optimizer steps" in line]
    assert said == [
        "43 training images: batches of 8, not 512, so that an epoch takes at least 25 optimizer steps "
        "(--batch-size sets it)"
    ]
    info = json.loads((tmp_path / "run" / "model.json").read_text())
    assert info["batch_rule"] == {"min_steps_per_epoch": 25, "preset_batch_size": 512, "batch_size": 8}
    assert info["hyperparameters"]["batch_size"] == 8 and info["splits"]["train"] == 43
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert len(history) == 8

    asked = cli(
        "train", "--dataset", folder, "--out", tmp_path / "asked", "--no-progress", "--no-report", "--batch-size", "512"
    )
    assert asked.returncode == 0 and "optimizer steps" not in asked.stderr
    info = json.loads((tmp_path / "asked" / "model.json").read_text())
    assert info["batch_rule"] is None and info["hyperparameters"]["batch_size"] == 512


def test_evaluate_report_and_compare_read_the_folder_again(shapes_run, tmp_path):
    _, run = shapes_run
    evaluated = cli("evaluate", run, "--json")
    assert evaluated.returncode == 0, evaluated.stderr
    result = json.loads(evaluated.stdout)
    assert result["dataset"] == "shapes" and result["size"] == 17
    assert result["accuracy"] == json.loads((run / "metrics.json").read_text())["test_acc"]
    (run / "report.html").unlink()
    assert cli("report", run).returncode == 0
    assert "circle" in (run / "report.html").read_text()
    compared = cli("compare", run, run, "--out", tmp_path / "compare.png")
    assert compared.returncode == 0 and (tmp_path / "compare.png").is_file()


def test_evaluate_and_report_read_a_moved_folder_from_its_new_place_once_it_holds_the_same_images(shapes_run, tmp_path):
    import shutil

    folder, trained = shapes_run
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    info = json.loads((run / "model.json").read_text())
    info["source"]["folder"] = str(tmp_path / "where-it-was")  # the images have moved since
    (run / "model.json").write_text(json.dumps(info))
    moved = tmp_path / "moved"
    shutil.copytree(folder, moved)  # a copy: new modification times, the same names and sizes
    assert_clean_error(cli("evaluate", run), "if they moved, give their new place with --dataset FOLDER")
    evaluated = cli("evaluate", run, "--json", "--dataset", moved)
    assert evaluated.returncode == 0, evaluated.stderr
    assert json.loads(evaluated.stdout)["accuracy"] == json.loads((run / "metrics.json").read_text())["test_acc"]
    assert cli("report", run, "--dataset", moved).returncode == 0
    assert "circle" in (run / "report.html").read_text()

    (moved / "circle" / "000.png").unlink()  # no longer the run's images: its splits would differ
    for command in ("evaluate", "report"):
        assert_clean_error(cli(command, run, "--dataset", moved), "does not hold the images this run was trained on")
    shutil.rmtree(moved / "circle")
    assert_clean_error(cli("evaluate", run, "--dataset", moved), "not the run's")


def test_dataset_for_evaluate_and_report_is_refused_for_a_run_of_the_table(run_dir, tmp_path):
    for command in ("evaluate", "report"):
        result = cli(command, run_dir, "--dataset", tmp_path)
        assert result.returncode == 2
        assert_clean_error(
            result, "--dataset FOLDER is for a run trained on a folder, and this one was trained on mnist"
        )


def test_predict_export_and_read_on_a_folder_run(shapes_run, tmp_path):
    _, run = shapes_run
    draw_shape("circle", np.random.default_rng(9)).save(tmp_path / "circle.png")
    predicted = cli("predict", run, tmp_path / "circle.png", "--json")
    assert predicted.returncode == 0, predicted.stderr
    [answer] = json.loads(predicted.stdout)
    assert answer["class"] == "circle" and len(answer["probabilities"]) == 3
    assert cli("predict", run, "--index", "0").returncode == 0  # an image of the run's own test split
    assert cli("export", run, "--out", tmp_path / "model.onnx").returncode == 0
    assert_clean_error(cli("read", run, tmp_path / "circle.png"), "needs a model whose classes are digits")


def test_serve_titles_the_page_and_labels_the_answers_with_the_folders_classes(shapes_run, tmp_path):
    _, run = shapes_run
    cross = image_bytes(draw_shape("cross", np.random.default_rng(5)))
    with serving(run) as url:
        status, model = request(f"{url}/api/model")
        assert status == 200 and model["model"]["dataset"] == "shapes" and model["model"]["classes"] == list(SHAPES)
        status, answer = request(f"{url}/api/predict", *multipart("file", "cross.png", cross))
    assert status == 200 and answer["class"] == "cross" and {t["class"] for t in answer["top_k"]} <= set(SHAPES)


def test_a_resized_layout_is_recorded_and_predicting_places_images_the_same_way(tmp_path):
    folder = write_shape_folder(tmp_path / "shapes", per_class=15)
    trained = cli("train", "--dataset", folder, "--layout", "resize", "--out", tmp_path / "run", "--no-progress")
    assert trained.returncode == 0, trained.stderr
    info = json.loads((tmp_path / "run" / "model.json").read_text())
    assert info["layout"]["cleaned"] is False and info["input_transform"] == "none"  # no deskewing of pictures
    predicted = cli("predict", tmp_path / "run", folder / "bar" / "000.png", "--json", "--save-preprocessed", tmp_path)
    assert predicted.returncode == 0, predicted.stderr
    seen = np.asarray(Image.open(next(tmp_path.glob("0000-*.png"))))
    assert seen.mean() > 150  # the light paper as it is, not cleaned into light ink on black


def test_the_same_command_twice_gives_the_same_model_and_the_cache_is_the_only_file_added(tmp_path):
    folder = write_shape_folder(tmp_path / "shapes", per_class=10)
    before = sorted(p.name for p in folder.iterdir())
    for name in ("a", "b"):
        done = cli("train", "--dataset", folder, "--epochs", "2", "--out", tmp_path / name, "--no-report")
        assert done.returncode == 0, done.stderr
    assert (tmp_path / "a" / "model.pth").read_bytes() == (tmp_path / "b" / "model.pth").read_bytes()
    assert sorted(p.name for p in folder.iterdir()) == sorted([*before, ".mnist-logreg-cache-digits.npz"])
    done = cli(
        "train", "--dataset", folder, "--epochs", "1", "--out", tmp_path / "c", "--no-cache", "--layout", "resize"
    )
    assert done.returncode == 0 and not (folder / ".mnist-logreg-cache-resize.npz").exists()


@pytest.mark.parametrize(
    ("make", "flags", "status", "message"),
    [
        (None, (), 2, "'missing' is neither one of ['fashion-mnist', 'mnist'] nor a folder"),
        (lambda root: write_shape_folder(root, 3, classes=("bar",)), (), 2, "holds 1 class folder(s): 'bar'"),
        (lambda root: (write_shape_folder(root, 3), (root / "dots").mkdir()), (), 2, "class 'dots' has no image files"),
        (
            lambda root: (
                write_shape_folder(root, 3),
                (root / "dots").mkdir(),
                (root / "dots" / "a.png").write_text("x"),
            ),
            (),
            1,
            "class 'dots' has no readable image",
        ),
        (lambda root: write_shape_folder(root, 3), ("--val-size", "500"), 1, "val_size=500 must be between 1 and"),
    ],
)
def test_bad_folders_are_one_line_errors_and_leave_no_run(tmp_path, make, flags, status, message):
    root = tmp_path / "missing"
    if make:
        make(root)
    done = cli("train", "--dataset", root if make else "missing", "--out", tmp_path / "run", "--no-progress", *flags)
    assert done.returncode == status and "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]  # after what reading said: the error, in one line
    assert last.startswith("mnist-logreg: error: ") and message in last, done.stderr
    assert not (tmp_path / "run").exists()


def test_layout_is_refused_for_a_dataset_of_the_table():
    assert_clean_error(cli("train", "--layout", "resize"), "--layout is for a folder dataset")
