"""Property tests of the image path: whatever image or bytes arrive, a valid input or the image error."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image

from mnist_logreg.images.preprocess import ImageError, open_image, preprocess_image
from tests.photos import image_bytes

MODES = ["1", "L", "LA", "P", "P-transparent", "RGB", "RGBA", "CMYK", "I;16", "F"]
CONTENTS = ["constant", "noise", "one-lit-pixel", "transparent"]
SIZES = st.one_of(
    st.tuples(st.integers(1, 48), st.integers(1, 48)),
    st.tuples(st.integers(1, 3), st.integers(60, 600)),  # long thin strips, both ways
    st.tuples(st.integers(60, 600), st.integers(1, 3)),
)
IMAGES = {  # what make_image takes, drawn by Hypothesis
    "size": SIZES,
    "mode": st.sampled_from(MODES),
    "content": st.sampled_from(CONTENTS),
    "level": st.integers(0, 255),
    "seed": st.integers(0, 2**16),
}
EXAMPLES = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def make_image(size: tuple[int, int], mode: str, content: str, level: int, seed: int) -> Image.Image:
    width, height = size
    rng = np.random.default_rng(seed)
    if content == "noise":
        values = rng.integers(0, 256, (height, width, 4), dtype=np.uint8)
    else:
        values = np.full((height, width, 4), level, dtype=np.uint8)
        if content == "one-lit-pixel":
            values[rng.integers(height), rng.integers(width), :3] = 255 - level
    rgba = Image.fromarray(values, mode="RGBA")
    if content == "transparent":
        rgba.putalpha(0)
    if mode == "P-transparent":
        image = rgba.convert("RGB").convert("P")
        image.info["transparency"] = 0
        return image
    if mode == "I;16":
        return Image.fromarray(np.asarray(rgba.convert("L"), dtype=np.uint16) * 257)  # the full 16-bit range
    if mode == "F":
        return Image.fromarray(np.asarray(rgba.convert("L"), dtype=np.float32) / 255 * level)
    return rgba.convert(mode)


def assert_valid_input_or_image_error(make):
    try:
        pixels = make()
    except ImageError:
        return
    assert pixels.shape == (1, 28, 28) and str(pixels.dtype) == "torch.float32"
    assert bool(pixels.isfinite().all()) and float(pixels.min()) >= 0 and float(pixels.max()) <= 1


@EXAMPLES
@given(**IMAGES)
@example(size=(1, 8), mode="1", content="noise", level=0, seed=0)  # found: OpenCV took a 1-px-wide image for points
def test_any_image_gives_a_finite_28x28_input_in_range_or_the_image_error(size, mode, content, level, seed):
    image = make_image(size, mode, content, level, seed)
    assert_valid_input_or_image_error(lambda: preprocess_image(image))


@EXAMPLES
@given(**IMAGES)
def test_any_image_saved_to_a_file_and_read_back_behaves_the_same(size, mode, content, level, seed):
    image = make_image(size, mode, content, level, seed)
    saved = image_bytes(image, "TIFF" if mode in ("CMYK", "F") else "PNG")
    assert_valid_input_or_image_error(lambda: preprocess_image(open_image(saved)))


MAGIC = [b"", b"\x89PNG\r\n\x1a\n", b"GIF89a", b"\xff\xd8\xff\xe0", b"BM", b"II*\x00", b"RIFF\x00\x00\x00\x00WEBPVP8 "]


@settings(max_examples=1000, deadline=None)
@given(magic=st.sampled_from(MAGIC), tail=st.binary(max_size=3000))
def test_arbitrary_bytes_open_as_an_image_or_raise_the_image_error(magic, tail):
    try:
        image = open_image(magic + tail)
    except ImageError:
        return
    assert isinstance(image, Image.Image) and image.width > 0 and image.height > 0


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_of_a_drawn_digit_is_read(mode):
    """The strategies above reach every mode; here each mode holds real ink and must give it."""
    values = np.full((60, 60, 4), 255, dtype=np.uint8)
    values[10:50, 28:33, :3] = 0  # a dark vertical stroke on white: a 1
    image = make_image((60, 60), "RGBA", "constant", 255, 0)
    image = Image.fromarray(values, mode="RGBA")
    converted = {
        "P-transparent": lambda: image.convert("RGB").convert("P"),
        "I;16": lambda: Image.fromarray(np.asarray(image.convert("L"), dtype=np.uint16) * 257),
        "F": lambda: Image.fromarray(np.asarray(image.convert("L"), dtype=np.float32) / 255),
    }.get(mode, lambda: image.convert(mode))()
    pixels = preprocess_image(converted)
    assert float(pixels.max()) == pytest.approx(1.0) and 0.02 < float(pixels.mean()) < 0.3
