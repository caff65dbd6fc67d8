"""The drawing page in a real browser: Debian's Chromium, driven by Playwright, against a real server.

The model is the default preset trained on the real MNIST, so that digits drawn with the mouse
must be read correctly.
"""

from __future__ import annotations

import math
import re
import shutil
from pathlib import Path

import pytest

from helpers import REPO_ROOT, serving, seven, train_preset

pytestmark = pytest.mark.real_data

CHROMIUM = "/usr/bin/chromium"
SCREENSHOT = REPO_ROOT / "docs" / "demo.png"
# Without these, Chromium keeps trying to reach the network (updates, sync) from a closed sandbox.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# Strokes in canvas fractions (0 to 1), drawn as a person would draw the digit.
STROKES = {
    "1": [[(0.55, 0.15), (0.47, 0.85)]],
    "7": [[(0.25, 0.2), (0.75, 0.2), (0.45, 0.85)]],
    "0": [
        [(0.5 + 0.22 * math.sin(t / 24 * 2 * math.pi), 0.5 - 0.33 * math.cos(t / 24 * 2 * math.pi)) for t in range(25)]
    ],
}


@pytest.fixture(scope="module")
def server(real_data_dir, tmp_path_factory):
    run = train_preset("mnist", "default", real_data_dir, tmp_path_factory.mktemp("browser") / "run")
    with serving(run.run_dir) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    assert shutil.which(CHROMIUM) or Path(CHROMIUM).exists(), "make test installs Debian's chromium"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, server):
    page = browser.new_page(viewport={"width": 900, "height": 700})
    page.goto(server + "/")
    page.wait_for_function("document.querySelectorAll('[data-testid^=bar-value-]').length === 10")
    yield page
    page.close()


def draw(page, strokes) -> None:
    box = page.get_by_test_id("canvas").bounding_box()
    for stroke in strokes:
        points = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in stroke]
        page.mouse.move(*points[0])
        page.mouse.down()
        for point in points[1:]:
            page.mouse.move(*point, steps=8)
        page.mouse.up()


def wait_for_prediction(page, digit: str) -> str:
    prediction = page.get_by_test_id("prediction")
    page.wait_for_function(
        "d => document.querySelector('[data-testid=prediction]').textContent.startsWith(d + ' ')",
        arg=digit,
        timeout=10_000,
    )
    return prediction.text_content()


def bar_percentages(page) -> list[float]:
    texts = [page.get_by_test_id(f"bar-value-{k}").text_content() for k in range(10)]
    return [float(text.rstrip("%")) for text in texts]


@pytest.mark.parametrize("digit", sorted(STROKES))
def test_a_digit_drawn_with_the_mouse_is_read_correctly(page, digit):
    draw(page, STROKES[digit])
    text = wait_for_prediction(page, digit)
    assert re.fullmatch(rf"{digit} · \d+\.\d%", text)
    percentages = bar_percentages(page)
    assert sum(percentages) == pytest.approx(100, abs=1.0)
    page.wait_for_timeout(300)  # the bars' width transition
    track = page.get_by_test_id(f"bar-{digit}").evaluate("e => e.parentElement.getBoundingClientRect().width")
    shown = page.get_by_test_id(f"bar-{digit}").bounding_box()["width"]
    assert shown == pytest.approx(track * percentages[int(digit)] / 100, abs=2)  # the bar is drawn to scale
    assert page.get_by_test_id("preprocessed").get_attribute("src").startswith("data:image/png;base64,")
    if digit == "7":
        SCREENSHOT.parent.mkdir(exist_ok=True)
        page.screenshot(path=str(SCREENSHOT), full_page=True)


def test_clear_empties_the_canvas_and_the_prediction(page):
    draw(page, STROKES["1"])
    wait_for_prediction(page, "1")
    page.get_by_test_id("clear").click()
    assert page.get_by_test_id("prediction").text_content() == "Draw something"
    blank = page.evaluate("""() => {
        const c = document.querySelector('[data-testid=canvas]');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        return d.every(v => v === 255);
    }""")
    assert blank


def test_uploading_an_image_file_predicts_it(page, tmp_path):
    seven().save(tmp_path / "seven.png")
    page.get_by_test_id("upload").set_input_files(str(tmp_path / "seven.png"))
    wait_for_prediction(page, "7")
    assert page.get_by_test_id("status").text_content() == "from seven.png"


def test_a_bad_upload_shows_the_error(page, tmp_path):
    (tmp_path / "notes.png").write_text("not an image")
    page.get_by_test_id("upload").set_input_files(str(tmp_path / "notes.png"))
    page.wait_for_function("document.querySelector('[data-testid=status]').classList.contains('error')")
    assert "not an image Pillow can read" in page.get_by_test_id("status").text_content()


def test_the_page_works_at_phone_width(browser, server):
    page = browser.new_page(viewport={"width": 375, "height": 740}, has_touch=True, is_mobile=True)
    page.goto(server + "/")
    box = page.get_by_test_id("canvas").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 375
    assert page.evaluate("document.documentElement.scrollWidth") <= 375  # no sideways scrolling
    draw(page, STROKES["7"])
    wait_for_prediction(page, "7")
    page.close()
