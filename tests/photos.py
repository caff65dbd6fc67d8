"""Realistic photos and drawings, for testing preprocessing and for the benchmarks: a drawn 7 on grey
paper, and makers that turn MNIST digits into what a person would photograph or draw.

Each maker takes a 28×28 uint8 digit (light on black) and a numpy Generator and returns a
PIL image the way a person would produce one: on paper, on a canvas, compressed, off-centre.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw


def seven(size=(300, 240), ink=20, paper=235, width=18, offset=(40, 30)) -> Image.Image:
    """A hand-drawn-looking 7 in grey ink on grey paper, off-centre on a landscape page."""
    image = Image.new("L", size, paper)
    draw = ImageDraw.Draw(image)
    x, y = offset
    draw.line([(x, y), (x + 110, y), (x + 45, y + 160)], fill=ink, width=width, joint="curve")
    return image


def _digit_stroke(digit: np.ndarray, size: int, rng: np.random.Generator) -> Image.Image:
    """The digit scaled up to ``size`` px (with a margin) and slightly rotated: ink mask in 'L'."""
    image = Image.fromarray(digit, mode="L").resize((size, size), Image.Resampling.BICUBIC)
    return image.rotate(float(rng.uniform(-12, 12)), resample=Image.Resampling.BICUBIC, fillcolor=0)


def _place(mask: Image.Image, canvas_size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """The mask pasted at a random, off-centre spot on an empty canvas, as floats in [0, 1]."""
    width, height = canvas_size
    canvas = np.zeros((height, width))
    left = int(rng.integers(0, width - mask.width + 1))
    top = int(rng.integers(0, height - mask.height + 1))
    canvas[top : top + mask.height, left : left + mask.width] = np.asarray(mask, dtype=float) / 255
    return canvas


def on_paper(digit: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """Dark ink on light paper under a lighting gradient, with sensor noise, as an RGB photo."""
    ink = _place(_digit_stroke(digit, int(rng.integers(110, 220)), rng), (400, 320), rng)
    ys, xs = np.mgrid[0:320, 0:400]
    angle = rng.uniform(0, 2 * np.pi)
    gradient = np.cos(angle) * xs / 400 + np.sin(angle) * ys / 320
    paper = 0.92 - 0.3 * (gradient - gradient.min()) / (np.ptp(gradient) + 1e-9)  # 0.62 to 0.92
    darkness = rng.uniform(0.55, 0.85)
    grey = paper * (1 - darkness * ink) + rng.normal(0, 0.03, paper.shape)
    tint = np.array([1.0, 0.97, 0.9])  # warm paper
    rgb = np.clip(grey[..., None] * tint, 0, 1)
    return Image.fromarray((rgb * 255).astype(np.uint8), mode="RGB")


def image_bytes(image: Image.Image, format: str = "PNG", **options) -> bytes:
    """The file ``image`` would be: its bytes in ``format``, with Pillow's save ``options`` (quality...)."""
    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()


def as_jpeg(image: Image.Image, quality: int = 70) -> Image.Image:
    return Image.open(io.BytesIO(image_bytes(image, "JPEG", quality=quality)))


def transparent_drawing(digit: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """Strokes of one random colour on a fully transparent canvas, as a drawing app exports."""
    alpha = _place(_digit_stroke(digit, int(rng.integers(150, 280)), rng), (300, 300), rng)
    colour = rng.integers(0, 256, 3)
    rgba = np.zeros((300, 300, 4), dtype=np.uint8)
    rgba[..., :3] = colour
    rgba[..., 3] = (alpha * 255).astype(np.uint8)
    return Image.fromarray(rgba, mode="RGBA")


def large_off_centre(digit: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """Black ink in a corner region of a large white page."""
    ink = _place(_digit_stroke(digit, int(rng.integers(120, 200)), rng), (1200, 900), rng)
    return Image.fromarray(((1 - ink) * 255).astype(np.uint8), mode="L")


MAKERS = {
    "paper": on_paper,
    "paper-jpeg": lambda digit, rng: as_jpeg(on_paper(digit, rng)),
    "transparent": transparent_drawing,
    "large-off-centre": large_off_centre,
}
