"""Preprocessing real images the MNIST way: formats, polarity, lighting, placement, limits and bad files."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from mnist_logreg.images.preprocess import ImageError, open_image, preprocess_image
from tests.photos import image_bytes, seven


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
    _ys, xs = np.indices(page.shape)
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


FORMATS = {
    "png-8bit": lambda im: image_bytes(im, "PNG"),
    "png-16bit": lambda im: image_bytes(Image.fromarray(np.asarray(im, dtype=np.uint16) * 257), "PNG"),
    "png-palette": lambda im: image_bytes(
        im.convert("RGB").convert("P", palette=Image.Palette.ADAPTIVE, colors=16), "PNG"
    ),
    "png-rgba-opaque": lambda im: image_bytes(im.convert("RGBA"), "PNG"),
    "jpeg": lambda im: image_bytes(im.convert("RGB"), "JPEG", quality=80),
    "bmp": lambda im: image_bytes(im, "BMP"),
    "gif": lambda im: image_bytes(im, "GIF"),
    "tiff": lambda im: image_bytes(im, "TIFF"),
    "webp": lambda im: image_bytes(im.convert("RGB"), "WEBP", quality=90),
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
    content = image_bytes(first, format, save_all=True, append_images=[second])
    assert Image.open(io.BytesIO(content)).n_frames == 2
    result = preprocess_image(open_image(content))
    assert correlation(result, preprocess_image(first)) > 0.95
    assert correlation(result, preprocess_image(second)) < 0.8


def test_jpeg_exif_orientation_is_honoured():
    upright = seven()
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # what a camera held sideways stores
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    content = image_bytes(stored.convert("RGB"), "JPEG", quality=90, exif=exif)
    result = preprocess_image(open_image(content))
    assert correlation(result, preprocess_image(upright)) > 0.9
    assert correlation(result, preprocess_image(stored)) < 0.6


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "empty file"),
        (b"hello, this is text", "not an image Pillow can read"),
        (image_bytes(seven(), "PNG")[:400], "truncated or corrupt image"),
        (image_bytes(seven().convert("RGB"), "JPEG")[:300], "truncated or corrupt image"),
        (image_bytes(Image.new("1", (8000, 6000), 1), "PNG"), "48 megapixels, over the limit of 40"),
        (image_bytes(Image.new("L", (200, 200), 230), "PNG"), "no ink found"),
        (
            image_bytes(
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
    path.write_bytes(image_bytes(Image.new("1", (10000, 10000), 0), "PNG"))  # 100 MP in a few kB
    assert path.stat().st_size < 100_000
    with pytest.raises(ImageError, match="100 megapixels, over the limit"):
        open_image(path)


def test_light_chalk_on_a_mid_grey_board_is_not_inverted():
    """The background need not be dark for light ink: what matters is which side the ink is on."""
    chalk = preprocess_image(seven(ink=245, paper=140))
    assert correlation(chalk, preprocess_image(seven())) > 0.95


def test_otsu_threshold_matches_a_brute_force_search():
    """Otsu's threshold maximises the between-class variance; check it against trying every cut."""
    from mnist_logreg.images.preprocess import _otsu

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
    from mnist_logreg.images.preprocess import _otsu

    values = np.array([0.1] * 700 + [0.9] * 300)
    threshold = _otsu(values)
    assert 0.1 <= threshold < 0.9 and ((values > threshold) == (values == 0.9)).all()


def test_box_blur_is_the_mean_over_each_window_with_edges_extended():
    from mnist_logreg.images.preprocess import _box_blur

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
        open_image(image_bytes(seven(), "PNG"))


def test_an_image_over_the_pixel_limit_is_its_own_error():
    from mnist_logreg.images.preprocess import ImageTooLarge

    with pytest.raises(ImageTooLarge, match="48 megapixels"):
        open_image(image_bytes(Image.new("1", (8000, 6000), 1), "PNG"))


def test_the_opening_removes_a_lighting_gradient_but_keeps_a_stroke():
    from mnist_logreg.images.preprocess import _opening

    _ys, xs = np.mgrid[0:64, 0:64]
    gradient = (0.2 + 0.5 * xs / 63).astype(np.float32)  # light growing left to right
    image = gradient.copy()
    image[10:54, 30:34] += 0.3  # a vertical stroke 4 px wide
    background = _opening(image, 13)
    assert np.abs(background - gradient).max() < 0.5 / 63 * 12 + 1e-6  # the gradient, within one window's slope
    stroke = image - background
    assert stroke[10:54, 30:34].min() > 0.25 and np.delete(stroke, np.s_[30:34], axis=1).max() < 0.1


def test_a_number_on_a_wide_lit_page_keeps_its_paper_as_paper():
    """The background window scales with the page's shorter side, as the digits' height does: on a
    wide page, a window of the longer side spanned the whole height and took paper for ink."""
    import cv2

    from mnist_logreg.images.preprocess import ink_of
    from mnist_logreg.infer.segment import split_digits
    from tests.written_numbers import compose, on_lit_paper

    def ring(k: int) -> np.ndarray:
        digit = np.zeros((28, 28), np.uint8)
        cv2.circle(digit, (14, 14), 8 + k % 3, 255, 2 + k % 2)
        return digit

    found = []
    for seed in range(40):
        rng = np.random.default_rng(seed)
        page = on_lit_paper(compose([ring(k) for k in range(4)], rng), rng)  # about 570 × 225
        found.append(len(split_digits(ink_of(page))))
    assert found == [4] * 40, found  # 2 of these 40 read as one blob with the longer side's window


def test_centre_of_mass_agrees_with_a_hand_count():
    from mnist_logreg.images.preprocess import centre_of_mass

    image = np.zeros((5, 7), dtype=np.float32)
    image[1, 2] = 1.0  # weight 1 at (1, 2)
    image[3, 6] = 3.0  # weight 3 at (3, 6)
    assert centre_of_mass(image) == pytest.approx(((1 * 1 + 3 * 3) / 4, (1 * 2 + 3 * 6) / 4))


def test_a_large_jpeg_is_decoded_at_a_reduced_scale_upright_and_reads_the_same():
    photo = Image.new("L", (4000, 3000), 235)
    ImageDraw.Draw(photo).line([(1200, 600), (2600, 600), (1700, 2500)], fill=20, width=160)  # a 7
    content = image_bytes(photo, "JPEG")
    reduced = open_image(content, reduce_to=512)
    assert reduced.size == (1000, 750)  # 1/4: the smallest scale whose longer side is still >= 512
    assert open_image(content).size == (4000, 3000)
    assert correlation(preprocess_image(reduced), preprocess_image(photo)) > 0.95

    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: rotate 90° clockwise to view
    sideways = photo.transpose(Image.Transpose.ROTATE_90)
    upright = open_image(image_bytes(sideways, "JPEG", exif=exif), reduce_to=512)
    assert upright.size == (1000, 750)
    assert correlation(preprocess_image(upright), preprocess_image(photo)) > 0.95


def test_the_pixel_limit_holds_with_reduced_decoding():
    from mnist_logreg.images.preprocess import ImageTooLarge

    with pytest.raises(ImageTooLarge, match="over the limit of 40"):
        open_image(image_bytes(Image.new("L", (8000, 6000), 200), "JPEG"), reduce_to=512)


@pytest.mark.parametrize("width", [2, 4, 8, 14, 30])
def test_a_stroke_of_any_pen_width_is_placed_as_wide_as_mnists(width):
    """A vertical line 220 px tall: however wide the pen, placed in 20 px its stroke is as wide as
    MNIST's strokes (STROKE_RANGE), not a 1-px hairline nor a block."""
    from mnist_logreg.images.preprocess import STROKE_RANGE, preprocess_array, stroke_width

    page = Image.new("L", (300, 300), 255)
    ImageDraw.Draw(page).line([(150, 40), (150, 260)], fill=0, width=width)
    placed = preprocess_array(page)
    enlarged = np.kron(placed, np.ones((4, 4), np.float32))  # measured at a quarter pixel, as the ranges were
    low, high = STROKE_RANGE
    assert low - 0.6 <= stroke_width(enlarged) / 4 <= high + 0.6, stroke_width(enlarged) / 4


def test_a_small_scan_is_cleaned_grown_so_that_the_median_filter_keeps_its_strokes():
    """A 28×28 digit saved as a PNG: cleaned at MIN_WORKING_SIDE, where a 3×3 median filter is finer
    than its strokes, and a large photo still at WORKING_SIDE."""
    from mnist_logreg.images.preprocess import MIN_WORKING_SIDE, WORKING_SIDE, ink_of

    small = Image.new("L", (28, 21), 0)
    ImageDraw.Draw(small).line([(14, 3), (14, 18)], fill=255, width=2)  # a 2 px stroke: a 3×3 median would thin it
    assert ink_of(small).shape == (round(21 * MIN_WORKING_SIDE / 28), MIN_WORKING_SIDE)
    assert ink_of(small).max() == 1.0
    large = Image.new("L", (1200, 900), 255)
    ImageDraw.Draw(large).line([(600, 100), (600, 800)], fill=0, width=30)
    assert ink_of(large).shape == (288, WORKING_SIDE)


def test_an_image_placed_already_is_taken_as_it_is_and_any_other_is_placed():
    """An MNIST digit saved as a file, light on black or inverted, reads back exactly as it was; the
    same digit off-centre, too small for the box or on grey paper is placed as a photo is."""
    from mnist_logreg.images.inputs import byte_pixels, unit_pixels
    from mnist_logreg.images.preprocess import centre_of_mass, preprocess_file

    digit = byte_pixels(as_array(preprocess_image(seven())))  # as MNIST holds one: placed, in 8 bits
    assert np.array_equal(preprocess_file(image_bytes(Image.fromarray(digit))), unit_pixels(digit))
    inverted = preprocess_file(image_bytes(Image.fromarray(255 - digit)))  # dark on white: 1 - grey
    assert np.allclose(inverted, unit_pixels(digit), rtol=0, atol=1e-6)

    def placed_again(moved: np.ndarray) -> np.ndarray:
        pixels = preprocess_file(image_bytes(Image.fromarray(moved)))
        rows, cols = np.flatnonzero(pixels.any(axis=1)), np.flatnonzero(pixels.any(axis=0))
        assert max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1 in (20, 21)  # scaled into the box
        assert np.allclose(centre_of_mass(pixels), (14, 14), atol=0.5)  # and centred
        return pixels

    off_centre = np.roll(digit, (3, -3), axis=(0, 1))
    small = np.zeros_like(digit)
    small[7:21, 7:21] = np.asarray(Image.fromarray(digit).resize((14, 14), Image.Resampling.LANCZOS))
    for moved in (off_centre, small):
        assert not np.array_equal(placed_again(moved), unit_pixels(moved))
    on_grey = (128 - digit // 2).astype(np.uint8)  # dark ink on mid-grey paper: the photo path cleans it
    assert not np.array_equal(placed_again(on_grey), unit_pixels(255 - on_grey))
