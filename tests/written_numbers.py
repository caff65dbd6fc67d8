"""Written numbers made from MNIST test digits, for testing ``read``.

``compose`` lays digits out left to right as one line of writing, with chosen gaps (negative:
the digits touch), varied sizes and baselines; ``on_lit_paper`` and ``on_transparent_canvas``
turn the ink into what a person would photograph or export.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from tests.photos import as_jpeg


def _cropped(digit: np.ndarray) -> np.ndarray:
    rows, cols = np.flatnonzero(digit.any(axis=1)), np.flatnonzero(digit.any(axis=0))
    return digit[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def compose(digits: list[np.ndarray], rng: np.random.Generator, gaps=(8, 24), height: int = 90) -> np.ndarray:
    """Ink in [0, 1] (light on dark) of 28×28 uint8 digits written in a row.

    Each digit is scaled to ``height`` × 0.8–1.2 and dropped by up to 8 % of the height; the
    gap before each digit after the first is drawn from ``gaps`` (pixels; negative overlaps).
    """
    pieces, tops = [], []
    for digit in digits:
        crop = _cropped(digit)
        scale = height * rng.uniform(0.8, 1.2) / crop.shape[0]
        size = (max(2, round(crop.shape[1] * scale)), max(2, round(crop.shape[0] * scale)))
        pieces.append(np.asarray(Image.fromarray(crop).resize(size, Image.Resampling.BICUBIC), dtype=float) / 255)
        tops.append(int(rng.uniform(0, 0.08) * height))
    gap_list = [0] + [int(rng.integers(gaps[0], gaps[1] + 1)) for _ in digits[1:]]
    width = sum(p.shape[1] for p in pieces) + sum(gap_list) + 2 * height
    canvas = np.zeros((int(1.5 * height) + 2 * height // 2, width))
    x = height
    for piece, top, gap in zip(pieces, tops, gap_list, strict=True):
        x += gap
        region = canvas[height // 2 + top : height // 2 + top + piece.shape[0], x : x + piece.shape[1]]
        np.maximum(region, piece, out=region)
        x += piece.shape[1]
    return np.clip(canvas[:, : x + height], 0, 1)


def on_lit_paper(ink: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """Dark ink on paper under a lighting gradient, with noise, saved as a JPEG."""
    h, w = ink.shape
    ys, xs = np.mgrid[0:h, 0:w]
    angle = rng.uniform(0, 2 * np.pi)
    gradient = np.cos(angle) * xs / w + np.sin(angle) * ys / h
    paper = 0.92 - 0.3 * (gradient - gradient.min()) / (np.ptp(gradient) + 1e-9)
    grey = paper * (1 - rng.uniform(0.6, 0.85) * ink) + rng.normal(0, 0.03, ink.shape)
    rgb = np.clip(grey[..., None] * np.array([1.0, 0.97, 0.9]), 0, 1)
    return as_jpeg(Image.fromarray((rgb * 255).astype(np.uint8), mode="RGB"), quality=80)


def on_transparent_canvas(ink: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """Strokes of one colour on a transparent canvas, as a drawing app exports them."""
    rgba = np.zeros((*ink.shape, 4), dtype=np.uint8)
    rgba[..., :3] = rng.integers(0, 256, 3)
    rgba[..., 3] = (ink * 255).astype(np.uint8)
    return Image.fromarray(rgba, mode="RGBA")


KINDS = {"lit-paper-jpeg": on_lit_paper, "transparent": on_transparent_canvas}
