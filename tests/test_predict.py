"""Preprocessing real images and predicting them: formats, polarity, placement and bad files."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from mnist_logreg.preprocess import ImageError, open_image, preprocess_array, preprocess_image
from tests.helpers import assert_clean_error, cli, rejecting_run, untrained_run
from tests.photos import seven


def as_array(pixels: torch.Tensor) -> np.ndarray:
    return pixels[0].numpy()


def correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(np.corrcoef(as_array(a).ravel(), as_array(b).ravel())[0, 1])


def test_the_output_looks_like_mnist():
    pixels = preprocess_image(seven())
    assert pixels.shape == (1, 28, 28) and pixels.dtype == torch.float32
    image = as_array(pixels)
    assert image.min() == 0 and image.max() == pytest.approx(1.0)
    rows, cols = np.flatnonzero(image.any(axis=1)), np.flatnonzero(image.any(axis=0))
    assert max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1 in (20, 21)  # longer side in the 20-px box
    ys, xs = np.indices(image.shape)
    centre = ((ys * image).sum() / image.sum(), (xs * image).sum() / image.sum())
    assert centre == pytest.approx((14, 14), abs=0.75)  # centred by centre of mass
    assert image[:3].sum() == 0 and image[:, :2].sum() == 0  # black background


def test_polarity_is_read_from_the_image():
    dark_on_light = preprocess_image(seven(ink=20, paper=235))
    light_on_dark = preprocess_image(seven(ink=235, paper=20))
    assert correlation(dark_on_light, light_on_dark) > 0.95


def test_uneven_lighting_and_noise_are_removed():
    clean = preprocess_image(seven())
    page = np.asarray(seven(), dtype=float)
    ys, xs = np.indices(page.shape)
    lit = page * (0.55 + 0.45 * xs / xs.max()) + np.random.default_rng(0).normal(0, 8, page.shape)
    noisy = preprocess_image(Image.fromarray(np.clip(lit, 0, 255).astype(np.uint8)))
    assert correlation(clean, noisy) > 0.9
    assert as_array(noisy)[:4].sum() == 0  # the dark side of the page did not become ink


def test_position_and_size_on_the_page_do_not_matter():
    small = preprocess_image(seven(size=(300, 240), offset=(40, 30)))
    large = preprocess_image(seven(size=(1600, 1200), offset=(1300, 900)).resize((1600, 1200)))
    assert correlation(small, large) > 0.95


@pytest.mark.parametrize("stroke", [(0, 0, 0), (255, 255, 255), (200, 30, 30), (40, 90, 220)])
def test_strokes_on_a_transparent_canvas_survive_whatever_their_colour(stroke):
    mask = seven(ink=255, paper=0)
    drawing = Image.new("RGBA", mask.size, (*stroke, 0))  # transparent pixels carry the stroke colour too
    drawing.putalpha(mask)
    assert correlation(preprocess_image(drawing), preprocess_image(seven())) > 0.95


def _save(image: Image.Image, format: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()


FORMATS = {
    "png-8bit": lambda im: _save(im, "PNG"),
    "png-16bit": lambda im: _save(Image.fromarray((np.asarray(im, dtype=np.uint16) * 257)), "PNG"),
    "png-palette": lambda im: _save(im.convert("RGB").convert("P", palette=Image.Palette.ADAPTIVE, colors=16), "PNG"),
    "png-rgba-opaque": lambda im: _save(im.convert("RGBA"), "PNG"),
    "jpeg": lambda im: _save(im.convert("RGB"), "JPEG", quality=80),
    "bmp": lambda im: _save(im, "BMP"),
    "gif": lambda im: _save(im, "GIF"),
    "tiff": lambda im: _save(im, "TIFF"),
    "webp": lambda im: _save(im.convert("RGB"), "WEBP", quality=90),
}


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_every_format_gives_the_same_digit(name):
    content = FORMATS[name](seven())
    image = open_image(content)
    if name == "png-16bit":
        assert image.mode.startswith("I")
    assert correlation(preprocess_image(image), preprocess_image(seven())) > 0.95


@pytest.mark.parametrize("format", ["GIF", "TIFF"])
def test_animated_and_multi_page_files_use_the_first_frame(format):
    first = seven()
    second = seven().transpose(Image.Transpose.FLIP_TOP_BOTTOM)
    content = _save(first, format, save_all=True, append_images=[second])
    assert Image.open(io.BytesIO(content)).n_frames == 2
    result = preprocess_image(open_image(content))
    assert correlation(result, preprocess_image(first)) > 0.95
    assert correlation(result, preprocess_image(second)) < 0.8


def test_jpeg_exif_orientation_is_honoured():
    upright = seven()
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # what a camera held sideways stores
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    content = _save(stored.convert("RGB"), "JPEG", quality=90, exif=exif)
    result = preprocess_image(open_image(content))
    assert correlation(result, preprocess_image(upright)) > 0.9
    assert correlation(result, preprocess_image(stored)) < 0.6


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "empty file"),
        (b"hello, this is text", "not an image Pillow can read"),
        (_save(seven(), "PNG")[:400], "truncated or corrupt image"),
        (_save(seven().convert("RGB"), "JPEG")[:300], "truncated or corrupt image"),
        (_save(Image.new("1", (8000, 6000), 1), "PNG"), "48 megapixels, over the limit of 40"),
        (_save(Image.new("L", (200, 200), 230), "PNG"), "no ink found"),
        (
            _save(
                Image.fromarray(
                    np.full((120, 160), 128, np.uint8)
                    + np.random.default_rng(1).integers(0, 3, (120, 160)).astype(np.uint8)
                ),
                "PNG",
            ),
            "no ink found",
        ),
    ],
    ids=["empty", "text", "truncated-png", "truncated-jpeg", "bomb", "blank", "flat-grey"],
)
def test_bad_files_are_clear_errors(content, message):
    with pytest.raises(ImageError, match=message):
        preprocess_image(open_image(content))


def test_the_pixel_limit_is_checked_before_decoding(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(_save(Image.new("1", (10000, 10000), 0), "PNG"))  # 100 MP in a few kB
    assert path.stat().st_size < 100_000
    with pytest.raises(ImageError, match="100 megapixels, over the limit"):
        open_image(path)


@pytest.fixture
def run_dir(tmp_path):
    return untrained_run(tmp_path / "run")


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
        assert set(row) == {"path", "accepted", "label", "class", "probability", "top_k", "probabilities"}
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


def test_light_chalk_on_a_mid_grey_board_is_not_inverted():
    """The background need not be dark for light ink: what matters is which side the ink is on."""
    chalk = preprocess_image(seven(ink=245, paper=140))
    assert correlation(chalk, preprocess_image(seven())) > 0.95


def test_otsu_threshold_matches_a_brute_force_search():
    """Otsu's threshold maximises the between-class variance; check it against trying every cut."""
    from mnist_logreg.preprocess import _otsu

    rng = np.random.default_rng(0)
    values = np.clip(np.concatenate([rng.normal(0.2, 0.05, 3000), rng.normal(0.7, 0.08, 1000)]), 0, 1)
    levels = np.round(values * 255)  # the 8-bit levels the threshold is computed on

    def between_class_variance(cut):  # classes: levels <= cut, levels > cut
        below, above = levels[levels <= cut], levels[levels > cut]
        if not len(below) or not len(above):
            return -1.0
        return len(below) * len(above) * (below.mean() - above.mean()) ** 2

    best = max(range(255), key=between_class_variance)
    assert _otsu(values) == pytest.approx(best / 255, abs=1.5 / 255)
    assert 0.3 < _otsu(values) < 0.6  # between the two levels


def test_otsu_threshold_of_a_two_level_image_separates_the_levels():
    from mnist_logreg.preprocess import _otsu

    values = np.array([0.1] * 700 + [0.9] * 300)
    threshold = _otsu(values)
    assert 0.1 <= threshold < 0.9 and ((values > threshold) == (values == 0.9)).all()


def test_box_blur_is_the_mean_over_each_window_with_edges_extended():
    from mnist_logreg.preprocess import _box_blur

    values = np.random.default_rng(1).random((7, 9))
    radius = 2
    padded = np.pad(values, radius, mode="edge")
    expected = np.array(
        [[padded[r : r + 2 * radius + 1, c : c + 2 * radius + 1].mean() for c in range(9)] for r in range(7)]
    )
    assert np.allclose(_box_blur(values, radius), expected, atol=1e-12)


def test_a_decoder_failing_in_any_way_on_hostile_bytes_is_an_image_error(monkeypatch):
    """Pillow's decoders raise more than OSError on crafted files; all of it is the input's fault."""
    from PIL import PngImagePlugin

    def crash(self, *args, **kwargs):
        raise IndexError("list index out of range")  # as a decoder tripping over a crafted chunk

    monkeypatch.setattr(PngImagePlugin.PngImageFile, "load", crash)
    with pytest.raises(ImageError, match=r"the image could not be decoded \(IndexError\)"):
        open_image(_save(seven(), "PNG"))


def test_an_image_over_the_pixel_limit_is_its_own_error():
    from mnist_logreg.preprocess import ImageTooLarge

    with pytest.raises(ImageTooLarge, match="48 megapixels"):
        open_image(_save(Image.new("1", (8000, 6000), 1), "PNG"))


def test_the_opening_removes_a_lighting_gradient_but_keeps_a_stroke():
    from mnist_logreg.preprocess import _opening

    ys, xs = np.mgrid[0:64, 0:64]
    gradient = (0.2 + 0.5 * xs / 63).astype(np.float32)  # light growing left to right
    image = gradient.copy()
    image[10:54, 30:34] += 0.3  # a vertical stroke 4 px wide
    background = _opening(image, 13)
    assert np.abs(background - gradient).max() < 0.5 / 63 * 12 + 1e-6  # the gradient, within one window's slope
    stroke = image - background
    assert stroke[10:54, 30:34].min() > 0.25 and np.delete(stroke, np.s_[30:34], axis=1).max() < 0.1


def test_centre_of_mass_agrees_with_a_hand_count():
    from mnist_logreg.preprocess import centre_of_mass

    image = np.zeros((5, 7), dtype=np.float32)
    image[1, 2] = 1.0  # weight 1 at (1, 2)
    image[3, 6] = 3.0  # weight 3 at (3, 6)
    assert centre_of_mass(image) == pytest.approx(((1 * 1 + 3 * 3) / 4, (1 * 2 + 3 * 6) / 4))


def test_a_large_jpeg_is_decoded_at_a_reduced_scale_upright_and_reads_the_same():
    photo = Image.new("L", (4000, 3000), 235)
    ImageDraw.Draw(photo).line([(1200, 600), (2600, 600), (1700, 2500)], fill=20, width=160)  # a 7
    content = _save(photo, "JPEG")
    reduced = open_image(content, reduce_to=512)
    assert reduced.size == (1000, 750)  # 1/4: the smallest scale whose longer side is still >= 512
    assert open_image(content).size == (4000, 3000)
    assert correlation(preprocess_image(reduced), preprocess_image(photo)) > 0.95

    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: rotate 90° clockwise to view
    sideways = photo.transpose(Image.Transpose.ROTATE_90)
    buffer = io.BytesIO()
    sideways.save(buffer, format="JPEG", exif=exif)
    upright = open_image(buffer.getvalue(), reduce_to=512)
    assert upright.size == (1000, 750)
    assert correlation(preprocess_image(upright), preprocess_image(photo)) > 0.95


def test_the_pixel_limit_holds_with_reduced_decoding():
    from mnist_logreg.preprocess import ImageTooLarge

    with pytest.raises(ImageTooLarge, match="over the limit of 40"):
        open_image(_save(Image.new("L", (8000, 6000), 200), "JPEG"), reduce_to=512)


def test_predicting_a_folder_in_parallel_streams_json_lines_in_input_order(run_dir, tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    for k in range(12):
        seven(offset=(20 + 5 * k, 30)).save(folder / f"{k:02d}.png")
    (folder / "05-broken.png").write_bytes(b"\\x89PNG\\r\\n\\x1a\\nbroken")
    parallel = cli("predict", run_dir, folder, "--jsonl", "--workers", "2")
    serial = cli("predict", run_dir, folder, "--jsonl", "--workers", "1")
    assert parallel.returncode == serial.returncode == 1  # one file could not be read
    lines = [json.loads(line) for line in parallel.stdout.splitlines()]
    assert [line["path"] for line in lines] == sorted(str(p) for p in folder.iterdir())  # input order
    assert "error" in lines[5] and lines[5]["path"].endswith("05-broken.png")
    assert lines == [json.loads(line) for line in serial.stdout.splitlines()]  # the same answers either way


@pytest.mark.parametrize("workers", [1, 2])
def test_predicting_takes_files_as_it_goes_instead_of_listing_them_all_first(run_dir, tmp_path, workers):
    from mnist_logreg.pool import Options, answer_files, expand_paths

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
    listed = expand_paths([folder])
    assert not isinstance(listed, list) and list(listed) == [folder / "a.png", folder / "b.png"]


@pytest.mark.parametrize(("files", "processes"), [(1, 0), (3, 2)])
def test_worker_processes_start_only_when_there_are_files_to_share(run_dir, tmp_path, files, processes):
    import multiprocessing

    from mnist_logreg.pool import Options, answer_files

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
    assert row("--reject-below", "0.99")["accepted"] is False  # an untrained model is never that sure
    assert row("--reject-below", "0")["accepted"] is True
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


def test_probabilities_are_the_softmax_of_the_logits_over_the_runs_temperature(tmp_path):
    from mnist_logreg.calibration import softmax
    from mnist_logreg.predict import predict_pixels
    from mnist_logreg.runs import load_run
    from mnist_logreg.weights import load_weights

    rejecting_run(tmp_path / "run", temperature=3.0)
    pixels = np.random.default_rng(0).random((28, 28)).astype(np.float32)
    weights, info = load_weights(tmp_path / "run")
    logits = weights.weight.astype(np.float64) @ pixels.reshape(-1) + weights.bias
    expected = softmax(logits, 3.0)
    assert predict_pixels(pixels, weights, info.classes)["probabilities"] == pytest.approx(expected.tolist())
    model, _ = load_run(tmp_path / "run")
    torch_probabilities = model.predict_proba(torch.from_numpy(pixels).reshape(1, 1, 28, 28))[0].numpy()
    assert torch_probabilities == pytest.approx(expected, abs=1e-6)


def test_an_old_run_folder_without_temperature_or_reject_predicts_as_before(tmp_path):
    from mnist_logreg.weights import load_weights

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
