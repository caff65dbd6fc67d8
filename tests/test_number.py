"""Reading whole numbers: the command line and the API, on constructed drawings."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from PIL import Image

from mnist_logreg import MNISTModel
from mnist_logreg.model.run_folder import save_model
from tests.helpers import cli, model_json, rejecting_run, untrained_run
from tests.servers import multipart, multipart_files, request, serving

FASHION_INFO = model_json(dataset="fashion-mnist", classes=["T-shirt/top", "Trouser", *map(str, range(8))])


def drawing(tmp_path, name="ten.png") -> tuple:
    """Dark strokes on white, 800×300: a 1 at x = 150 and a 0 centred at x = 400."""
    page = np.full((300, 800), 255, np.uint8)
    cv2.line(page, (150, 60), (150, 240), 0, 14)
    cv2.ellipse(page, (400, 150), (70, 90), 0, 0, 360, 0, 14)
    Image.fromarray(page).save(tmp_path / name)
    return tmp_path / name, [(143, 53, 15, 195), (323, 53, 155, 195)]


@pytest.fixture
def run_dir(tmp_path):
    return untrained_run(tmp_path / "run")


def test_read_prints_json_with_one_entry_per_digit_and_boxes_in_the_images_pixels(run_dir, tmp_path):
    path, expected_boxes = drawing(tmp_path)
    result = cli("read", run_dir, path, "--json", "--top-k", "2")
    assert result.returncode == 0, result.stderr
    [reading] = json.loads(result.stdout)
    assert reading["path"] == str(path) and len(reading["text"]) == 2
    assert set(reading) == {"path", "text", "probability", "digits"}
    assert reading["probability"] == pytest.approx(np.prod([d["probability"] for d in reading["digits"]]))
    for digit, (x, y, w, h) in zip(reading["digits"], expected_boxes, strict=True):
        assert (
            set(digit) == {"state", "accepted", "label", "class", "probability", "top_k", "box"}
            and len(digit["top_k"]) == 2
        )
        assert digit["class"] == str(digit["label"])  # as predict's answers name it
        assert np.allclose(digit["box"], [x, y, w, h], atol=10)  # within a few working pixels, scaled back
    assert reading["text"] == "".join(str(d["label"]) for d in reading["digits"])


def test_a_digit_read_unsure_stays_in_the_number_as_a_question_mark_and_the_table_says_so(run_dir, tmp_path):
    path, _ = drawing(tmp_path)
    sure = json.loads(cli("read", run_dir, path, "--json").stdout)[0]
    # Above any probability an untrained model gives: each part is a digit, but not for sure which.
    result = cli("read", run_dir, path, "--json", "--reject-below", "0.99")
    [reading] = json.loads(result.stdout)
    assert reading["text"] == "??" and [d["state"] for d in reading["digits"]] == ["unsure", "unsure"]
    for digit, was in zip(reading["digits"], sure["digits"], strict=True):
        assert digit["candidates"] == [t["class"] for t in was["top_k"][:2]] and digit["box"] == was["box"]
    table = cli("read", run_dir, path, "--reject-below", "0.99").stdout
    assert " ??  " in table and "? marks a digit read unsure (2 in all)" in table


def test_a_bad_file_gets_its_own_error_and_the_exit_status_is_1(run_dir, tmp_path):
    path, _ = drawing(tmp_path)
    (tmp_path / "notes.png").write_text("not an image")
    result = cli("read", run_dir, path, tmp_path / "notes.png", "--json")
    assert result.returncode == 1
    good, bad = json.loads(result.stdout)
    assert len(good["text"]) == 2 and bad == {
        "path": str(tmp_path / "notes.png"),
        "error": "not an image Pillow can read",
    }
    table = cli("read", run_dir, path, tmp_path / "notes.png")
    assert table.returncode == 1 and "notes.png: not an image Pillow can read" in table.stderr


def test_a_fashion_run_refuses_to_read_numbers(tmp_path):
    save_model(tmp_path / "fashion", MNISTModel(), FASHION_INFO)
    path, _ = drawing(tmp_path)
    result = cli("read", tmp_path / "fashion", path)
    assert result.returncode == 1
    assert "reading numbers needs a model whose classes are digits, and this is a fashion-mnist run" in result.stderr


def test_save_boxes_draws_each_digits_box_on_the_image(run_dir, tmp_path):
    path, boxes = drawing(tmp_path)
    assert cli("read", run_dir, path, "--save-boxes", tmp_path / "boxes").returncode == 0
    [saved] = (tmp_path / "boxes").iterdir()
    picture = np.asarray(Image.open(saved).convert("RGB")).astype(int)
    assert picture.shape == (300, 800, 3)
    red = (picture[..., 0] > 180) & (picture[..., 1] < 90)
    x, y, _w, h = boxes[1]
    assert red[y - 5 : y + h + 5, x - 5 : x + 5].sum() > 50  # the 0's box has a red left edge


def test_the_api_reads_one_image_and_a_batch(run_dir, tmp_path):
    path, _ = drawing(tmp_path)
    content = path.read_bytes()
    with serving(run_dir) as url:
        status, one = request(f"{url}/api/read", *multipart("file", "ten.png", content))
        assert status == 200 and len(one["text"]) == 2 and len(one["digits"]) == 2
        assert set(one["digits"][0]) == {"state", "accepted", "label", "class", "probability", "top_k", "box"}
        status, batch = request(
            f"{url}/api/read", *multipart_files([("file", "a.png", content), ("file", "b.txt", b"text")])
        )
        assert status == 200 and [a["filename"] for a in batch] == ["a.png", "b.txt"]
        assert batch[0]["text"] == one["text"] and "not an image" in batch[1]["error"]
        status, answer = request(f"{url}/api/read", b"{}", {"Content-Type": "application/json"})
        assert status == 400 and "image" in answer["error"]
    cli_reading = json.loads(cli("read", run_dir, path, "--json").stdout)[0]
    assert [d["box"] for d in cli_reading["digits"]] == [d["box"] for d in one["digits"]]


def test_the_api_of_a_fashion_run_refuses_to_read(tmp_path):
    save_model(tmp_path / "fashion", MNISTModel(), FASHION_INFO)
    path, _ = drawing(tmp_path)
    with serving(tmp_path / "fashion") as url:
        status, answer = request(f"{url}/api/read", *multipart("file", "ten.png", path.read_bytes()))
    assert status == 409 and "fashion-mnist run" in answer["error"]


def test_read_prints_json_lines_as_predict_does(run_dir, tmp_path):
    path, _ = drawing(tmp_path)
    second, _ = drawing(tmp_path, "again.png")
    lines = cli("read", run_dir, path, second, "--jsonl")
    assert lines.returncode == 0, lines.stderr
    readings = [json.loads(line) for line in lines.stdout.splitlines()]
    assert readings == json.loads(cli("read", run_dir, path, second, "--json").stdout)
    assert [r["path"] for r in readings] == [str(path), str(second)]


@pytest.mark.parametrize(
    "image",
    [Image.new("L", (300, 200), 255), Image.new("L", (300, 200), 0), Image.new("RGB", (1, 1), (90, 20, 20))],
    ids=["blank", "black", "one pixel"],
)
def test_a_page_without_ink_reads_as_no_digits(run_dir, tmp_path, image):
    image.save(tmp_path / "page.png")
    result = cli("read", run_dir, tmp_path / "page.png", "--json")
    assert result.returncode == 0, result.stderr
    [reading] = json.loads(result.stdout)
    assert reading["text"] == "" and reading["digits"] == [] and reading["probability"] == 0
    assert reading["reason"].startswith("no digits found: no ink found")
    table = cli("read", run_dir, tmp_path / "page.png")
    assert table.returncode == 0 and "no digits found" in table.stdout


def test_save_boxes_crosses_out_a_rejected_part_with_lines_not_a_missing_glyph(tmp_path):
    run = rejecting_run(tmp_path / "rejecting")  # every part is "not a digit"
    path, boxes = drawing(tmp_path)
    assert cli("read", run, path, "--save-boxes", tmp_path / "boxes").returncode == 0
    [saved] = (tmp_path / "boxes").iterdir()
    picture = np.asarray(Image.open(saved).convert("RGB")).astype(int)
    grey = np.abs(picture - 130).max(axis=2) < 40  # the colour of a rejected part
    x, y, _w, _h = boxes[1]
    font = max(12, 800 // 30)  # number.draw_boxes: the font size of an 800 px wide image
    size, top = round(font * 0.6), y - 800 // 28
    mark = grey[top : top + font, x - 3 : x + size + 4]  # where the mark before the probability stands
    longest = max(max((len(run) for run in "".join("#" if v else " " for v in row).split()), default=0) for row in mark)
    # Two crossing strokes: no row holds a long line, as the top and bottom of a missing-glyph box do.
    assert mark.sum() > 2 * size and longest <= size // 2
    middle = round(font * 0.55)
    assert mark[middle - 1 : middle + 2, 3 + size // 2 - 1 : 3 + size // 2 + 2].any()  # where they cross
