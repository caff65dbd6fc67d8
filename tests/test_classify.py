"""Preprocessing real images and predicting them: formats, polarity, placement and bad files."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from mnist_logreg.images.inputs import apply_input_transform
from mnist_logreg.images.preprocess import open_image, preprocess_array, preprocess_image
from mnist_logreg.infer.classify import predict_image_file
from mnist_logreg.model.linear import load_weights
from mnist_logreg.model.run_folder import load_run
from tests.helpers import cli, fetched_fake_dataset, moments, rejecting_run, run_process, train_preset, untrained_run
from tests.photos import seven
from tests.servers import multipart, request, serving


def test_predict_files_and_folders_reports_each_and_fails_if_any_failed(run_dir, tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    seven().save(folder / "a.png")
    seven().convert("RGB").save(folder / "b.jpg")
    (folder / "notes.txt").write_text("not an image, and not listed: folders yield image files only")
    (folder / "c.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")

    result = cli(
        "predict",
        run_dir,
        folder,
        empty,
        tmp_path / "missing.png",
        "--json",
        "--top-k",
        "2",
        "--save-preprocessed",
        tmp_path / "seen",
    )
    assert result.returncode == 1
    rows = json.loads(result.stdout)
    assert [row["path"] for row in rows] == [
        str(folder / "a.png"),
        str(folder / "b.jpg"),
        str(folder / "c.png"),
        str(empty),
        str(tmp_path / "missing.png"),
    ]
    good, bad = rows[:2], rows[2:]
    for row in good:
        assert set(row) == {"path", "state", "accepted", "label", "class", "probability", "top_k", "probabilities"}
        assert len(row["top_k"]) == 2 and row["top_k"][0]["label"] == row["label"]
        assert sum(row["probabilities"]) == pytest.approx(1.0, abs=1e-5)
        assert row["probability"] == pytest.approx(max(row["probabilities"]))
    assert [row["error"] for row in bad] == ["not an image Pillow can read", "empty file", "no such file"]
    saved = sorted((tmp_path / "seen").iterdir())
    assert [p.name for p in saved] == ["0000-a.png", "0001-b.png"]
    assert Image.open(saved[0]).size == (28, 28)
    assert "Traceback" not in result.stderr


def test_predict_prints_a_table_and_one_error_line_per_bad_file(run_dir, tmp_path):
    seven().save(tmp_path / "good.png")
    (tmp_path / "bad.png").write_text("nope")
    result = cli("predict", run_dir, tmp_path / "good.png", tmp_path / "bad.png")
    assert result.returncode == 1
    assert result.stdout.splitlines()[0].split()[:3] == ["path", "class", "prob"]
    assert str(tmp_path / "good.png") in result.stdout
    assert result.stderr.strip() == f"mnist-logreg: error: {tmp_path / 'bad.png'}: not an image Pillow can read"
    assert cli("predict", run_dir, tmp_path / "good.png").returncode == 0


def test_predict_needs_files_or_an_index(run_dir):
    result = cli("predict", run_dir)
    assert result.returncode == 2
    assert "give image files or folders to predict, or --index N" in result.stderr


def test_a_run_without_model_json_is_refused(run_dir, tmp_path):
    (run_dir / "model.json").unlink()
    seven().save(tmp_path / "good.png")
    result = cli("predict", run_dir, tmp_path / "good.png")
    assert result.returncode == 1
    assert "model.json is missing" in result.stderr and "Traceback" not in result.stderr


# ---------------------------------------------------------------------------------------------
# "Not a digit": the reject rule and calibrated probabilities
# ---------------------------------------------------------------------------------------------


def test_a_rejected_image_keeps_its_top_k_and_is_called_not_a_digit(tmp_path):
    rejecting_run(tmp_path / "run")
    seven().save(tmp_path / "seven.png")
    result = cli("predict", tmp_path / "run", tmp_path / "seven.png", "--json")
    assert result.returncode == 0, result.stderr
    [row] = json.loads(result.stdout)
    assert row["accepted"] is False and row["label"] is None and row["class"] == "not a digit"
    assert row["state"] == "rejected" and "candidates" not in row
    assert len(row["probabilities"]) == 11 and row["probabilities"][10] > 0.99
    assert [t["class"] for t in row["top_k"]] == [str(t["label"]) for t in row["top_k"]]  # digits only
    assert row["probability"] == pytest.approx(1 - row["top_k"][0]["probability"])
    table = cli("predict", tmp_path / "run", tmp_path / "seven.png")
    assert "not a digit" in table.stdout and "1 of 1 not taken for a digit" in table.stdout


def test_no_reject_accepts_every_image_and_reject_below_sets_the_threshold(tmp_path):
    untrained_run(tmp_path / "run")  # no reject class: every image accepted, unless a threshold is given
    seven().save(tmp_path / "seven.png")

    def row(*flags):
        result = cli("predict", tmp_path / "run", tmp_path / "seven.png", "--json", *flags)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)[0]

    plain = row()
    assert plain["accepted"] is True and plain["label"] == plain["top_k"][0]["label"]
    unsure = row("--reject-below", "0.99")  # an untrained model is never that sure: a digit, but which?
    assert unsure["accepted"] is False and unsure["state"] == "unsure" and unsure["class"] == "unsure"
    assert unsure["candidates"] == [t["class"] for t in unsure["top_k"][:2]] and unsure["label"] is None
    assert unsure["probability"] == pytest.approx(sum(t["probability"] for t in unsure["top_k"][:2]))
    table = cli("predict", tmp_path / "run", tmp_path / "seven.png", "--reject-below", "0.99").stdout
    assert f"{' or '.join(unsure['candidates'])}?" in table and "1 of 1 unsure between two classes" in table
    assert row("--reject-below", "0")["state"] == "accepted"
    rejecting_run(tmp_path / "run")
    rejected, taken = row(), row("--no-reject")
    assert rejected["accepted"] is False and taken["accepted"] is True
    assert taken["label"] == rejected["top_k"][0]["label"] and taken["top_k"] == rejected["top_k"]
    assert taken["probability"] == taken["top_k"][0]["probability"]


@pytest.mark.parametrize("flags", [["--reject-below", "1.5"], ["--reject-below", "0.5", "--no-reject"]])
def test_bad_reject_flags_are_one_line_errors(tmp_path, flags):
    untrained_run(tmp_path / "run")
    result = cli("predict", tmp_path / "run", "x.png", *flags)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_an_old_run_folder_without_temperature_or_reject_predicts_as_before(tmp_path):
    from mnist_logreg.model.linear import load_weights

    untrained_run(tmp_path / "run")
    assert not {"temperature", "reject"} & set(json.loads((tmp_path / "run" / "model.json").read_text()))
    seven().save(tmp_path / "seven.png")
    [row] = json.loads(cli("predict", tmp_path / "run", tmp_path / "seven.png", "--json").stdout)
    weights, _ = load_weights(tmp_path / "run")
    pixels = preprocess_array(Image.open(tmp_path / "seven.png")).reshape(-1).astype(np.float64)
    logits = weights.weight.astype(np.float64) @ pixels + weights.bias
    expected = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()  # temperature 1
    assert row["probabilities"] == pytest.approx(expected.tolist())
    assert row["accepted"] is True and row["label"] == int(expected.argmax())


def test_read_lists_rejected_parts_and_leaves_them_out_of_the_number(tmp_path):
    rejecting_run(tmp_path / "run")
    seven().save(tmp_path / "seven.png")
    result = cli("read", tmp_path / "run", tmp_path / "seven.png", "--json")
    [reading] = json.loads(result.stdout)
    assert reading["text"] == "" and reading["probability"] == 0.0
    assert reading["digits"] and all(not d["accepted"] and d["label"] is None for d in reading["digits"])
    accepted = json.loads(cli("read", tmp_path / "run", tmp_path / "seven.png", "--json", "--no-reject").stdout)[0]
    assert accepted["text"] and all(d["accepted"] for d in accepted["digits"])
    table = cli("read", tmp_path / "run", tmp_path / "seven.png").stdout
    assert table.splitlines()[1].split()[1:3] == ["-", "0.000"]


@pytest.fixture(scope="module")
def deskew_run(tmp_path_factory):
    """A run trained with deskewing on a small fake dataset, and one photo-like PNG of a digit."""
    root = tmp_path_factory.mktemp("deskew")
    spec, data_dir = fetched_fake_dataset(root)
    result = train_preset(spec, "default", data_dir, root / "run", epochs=2, val_size=60)
    assert result.info.input_transform == "deskew"
    photo = Image.new("L", (200, 160), 230)
    ImageDraw.Draw(photo).line([(60, 20), (150, 30), (90, 140)], fill=30, width=12)  # a slanted 7
    photo.save(root / "seven.png")
    return result.run_dir, root / "seven.png"


def test_cli_library_and_api_give_identical_probabilities(deskew_run, tmp_path):
    run_dir, png = deskew_run
    model, info = load_run(run_dir)
    assert model.input_transform == "deskew"
    library = predict_image_file(png, model, info)
    # The torch model and the torch-free weights (weights.npz) give the same probabilities.
    weights, _ = load_weights(run_dir)
    assert weights.input_transform == "deskew"
    without_torch = predict_image_file(png, weights, info)
    with torch.no_grad():
        through_torch = model.predict_proba(preprocess_image(open_image(png)).unsqueeze(0))[0].double().numpy()
    assert np.abs(np.array(without_torch["probabilities"]) - through_torch).max() < 1e-6
    assert without_torch["probabilities"] == library["probabilities"]
    # What the model saw is the deskewed input: its slant is gone.
    seen = torch.from_numpy(library["pixels"])
    # numpy (what predict uses) and torch (grid_sample) sample the same points: equal up to rounding
    assert torch.allclose(seen, apply_input_transform("deskew", preprocess_image(open_image(png))), atol=1e-5)
    _, _, var_row, cov = moments(seen)
    assert abs(cov / var_row) < 0.05
    assert abs(moments(preprocess_image(open_image(png)))[3]) > 1.0  # ... and it was slanted before

    printed = run_process("predict", run_dir, png, "--json", "--save-preprocessed", tmp_path / "seen")
    assert printed.returncode == 0, printed.stderr
    from_cli = json.loads(printed.stdout)[0]
    saved = np.asarray(Image.open(next((tmp_path / "seen").iterdir())), dtype=np.float32) / 255
    assert np.abs(saved - seen[0].numpy()).max() <= 0.5 / 255 + 1e-6  # the saved PNG is the deskewed input

    with serving(run_dir) as url:
        status, from_api = request(f"{url}/api/predict", *multipart("file", "seven.png", png.read_bytes()))
    assert status == 200
    assert from_cli["probabilities"] == library["probabilities"] == from_api["probabilities"]


def blank_pages(folder) -> list:
    """A white page, a black one, a one-pixel image and one lit pixel on black: nothing to read."""
    folder.mkdir()
    Image.new("L", (300, 200), 255).save(folder / "white.png")
    Image.new("RGB", (300, 200), (0, 0, 0)).save(folder / "black.jpg")
    Image.new("L", (1, 1), 40).save(folder / "one-pixel.png")
    dot = Image.new("L", (300, 300), 0)
    dot.putpixel((150, 150), 255)
    dot.save(folder / "dot.png")
    return sorted(folder.iterdir())


@pytest.mark.parametrize("flags", [[], ["--no-reject"]])
def test_a_page_without_ink_is_not_a_digit_for_certain_not_an_error(run_dir, tmp_path, flags):
    pages = blank_pages(tmp_path / "blank")
    result = cli("predict", run_dir, tmp_path / "blank", "--json", *flags)
    assert result.returncode == 0, result.stderr
    answers = json.loads(result.stdout)
    assert [a["path"] for a in answers] == [str(p) for p in pages]
    for answer in answers:
        assert answer["accepted"] is False and answer["label"] is None
        assert answer["class"] == "not a digit" and answer["probability"] == 1.0
        assert answer["reason"].startswith("no ink found")
        assert len(answer["top_k"]) == 3 and len(answer["probabilities"]) == 10
    table = cli("predict", run_dir, *pages)
    assert table.returncode == 0 and table.stdout.count("not a digit") == 4 and table.stderr == ""


def test_the_api_answers_a_blank_page_as_not_a_digit(run_dir, tmp_path):
    [page, *_] = blank_pages(tmp_path / "blank")
    with serving(run_dir) as url:
        status, answer = request(f"{url}/api/predict", *multipart("file", page.name, page.read_bytes()))
    assert status == 200
    assert answer["accepted"] is False and answer["class"] == "not a digit" and answer["probability"] == 1.0
    assert answer["reason"].startswith("no ink found") and answer["preprocessed"].startswith("data:image/png")
