"""Images that are not digits, for the reject class "not a digit" (outlier exposure).

A softmax over ten digits has no way to say "none of them": a scribble or a blank canvas comes
back as a confident digit. A model given an eleventh class, trained on images that are no
digit, learns where the digits end. Two kinds of outliers come with the project:

- ``drawn_outliers``: images drawn by code, deterministic given the seed: scribbles of several
  strokes, shapes (stars, crosses, grids, zigzags, polygons), filled blobs (what a single dot
  becomes once scaled into the digit box), noise, and blank or near-blank images;
- garments: a seeded choice of Fashion-MNIST's training images (``garment_outliers``), placed as
  a photo of one would be (``preprocess.place_ink``), when that dataset has been fetched.

The letters, symbols and handwriting the tests check the reject class on come from none of
these sources (tests/letters.py renders them from handwriting fonts).

Every outlier is placed in 28×28 the way ``preprocess_array`` places a photo's ink, so that
the model learns what users' non-digits look like after the same cleaning.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path

import cv2
import numpy as np

from ..config import DRAWN_OUTLIERS_PER_DIGIT, GARMENTS_PER_DIGIT
from ..images.inputs import SIDE, byte_pixels, unit_pixels
from ..images.layout import Layout
from ..images.preprocess import place_ink
from .catalog import DATASETS
from .fetch import missing_files
from .idx import read_idx
from .prepared import (
    DEFAULT_MAKING,
    Making,
    chunks,
    code_digest,
    images_made_in_workers,
    prepared_path,
    progress_bar,
    read_prepared,
    seeded_choice,
    write_prepared,
)

DRAWN_KINDS = ("scribble", "strokes", "shape", "blob", "noise", "blank")  # in this order, in equal shares
MNIST_LAYOUT = DATASETS["mnist"].layout  # placed as digits are, unless told otherwise
CANVAS = 64  # drawn at this size, then cropped, scaled and centred like a photo's ink


def training_outliers(
    digits: int,
    seed: int,
    data_dir: Path | str,
    *,
    making: Making = DEFAULT_MAKING,
) -> tuple[np.ndarray, dict[str, int]]:
    """The outliers a reject class learns from beside ``digits`` training digits, (N, 28, 28) uint8,
    and how many of each source: DRAWN_OUTLIERS_PER_DIGIT drawn ones, then GARMENTS_PER_DIGIT of
    Fashion-MNIST's training garments (a seeded choice) where that dataset has been fetched into
    ``data_dir``. Without it, the drawn ones alone, and one line says so: training never
    downloads a second dataset unasked.

    Making them takes seconds (one line says what is made, and with ``making.progress`` a bar
    shows it), so they are kept in ``data_dir/outliers/`` under a key of all they depend on
    (``cache_key``) and read from there the next time; ``making.cache=False`` neither reads nor
    writes that file. ``making.workers`` processes draw and place them.
    """
    fashion = DATASETS["fashion-mnist"]
    with_garments = not missing_files(fashion, data_dir)
    count = round(DRAWN_OUTLIERS_PER_DIGIT * digits)
    garment_count = round(GARMENTS_PER_DIGIT * digits) if with_garments else 0
    key = cache_key(count, seed, making.layout, garment_count)
    path = prepared_path(data_dir, CACHE_FOLDER, key)
    kept = read_prepared(path, key, making.log, what="outliers", holds=_holds_outliers) if making.cache else None
    if kept is not None:
        making.log(f"{len(kept['images']):,} outliers for the class 'not a digit' from {path}")
    else:
        placed = f" and placing {garment_count:,} Fashion-MNIST garments" if with_garments else ""
        making.log(f"drawing {count:,} outliers{placed} for the class 'not a digit' ...")
    if not with_garments:
        making.log(
            f"note: Fashion-MNIST is not in {data_dir} ('mnist-logreg fetch --dataset fashion-mnist' brings it); "
            "'not a digit' is learnt from drawn outliers only"
        )
    if kept is not None:
        return kept["images"], json.loads(str(kept["counts"]))
    jobs = [(_drawn_chunk, job) for job in _drawn_jobs(count, seed, making.layout)]
    counts = {"drawn": count}
    if with_garments:
        garments = chosen_garments(read_idx(fashion.raw_dir(data_dir) / fashion.files[0].name), garment_count, seed)
        jobs += [(_placed_garments, job) for job in _garment_jobs(garments, making.layout)]
        counts[fashion.name] = len(garments)
    with progress_bar(sum(counts.values()), "outliers", making.progress) as bar:
        images = images_made_in_workers(_made, jobs, bar.update, making.workers)
    if making.cache:
        write_prepared(path, key, {"counts": np.array(json.dumps(counts)), "images": images})
    return images, counts


CACHE_FOLDER = "outliers"  # in the data folder, beside the datasets the outliers are made with


def cache_key(count: int, seed: int, layout: Layout, garments: int) -> str:
    """All that the outliers depend on, as text: how many are drawn, the seed, the layout, how many
    garments join them (and from which file, by checksum), and the code that draws and places them."""
    fashion = DATASETS["fashion-mnist"]
    return json.dumps(
        {
            "drawn": count,
            "seed": seed,
            "layout": asdict(layout),
            "garments": [garments, fashion.files[0].sha256] if garments else None,
            "code": code_digest("data.outliers", "images.preprocess"),  # drawing, and place_ink
        },
        sort_keys=True,
    )


def _holds_outliers(kept: dict[str, np.ndarray]) -> bool:
    """Whether a kept file's arrays are outliers and their counts: as many bytes images as counted."""
    counts = json.loads(str(kept["counts"]))
    return kept["images"].dtype == np.uint8 and kept["images"].shape == (sum(counts.values()), SIDE, SIDE)


def drawn_outliers(
    count: int, seed: int, layout: Layout = MNIST_LAYOUT, done=lambda n: None, workers: int = 1
) -> np.ndarray:
    """``count`` drawn non-digits, (count, 28, 28) uint8, light on black, the kinds in turn; the same
    for the same seed, made by any number of ``workers`` processes. ``done(n)`` is told of every n made."""
    return images_made_in_workers(_drawn_chunk, _drawn_jobs(count, seed, layout), done, workers)


PROGRESS_STEP = 1000  # images made from one random stream, and between two updates of a progress bar


def _drawn_jobs(count: int, seed: int, layout: Layout) -> list[tuple[int, int, list[int], Layout]]:
    """(first, how many, random stream, layout) of each chunk: each chunk draws from a stream of its
    own (the split's and the weights' stay as they were), so that no chunk depends on another."""
    return [(part.start, part.stop - part.start, [seed, 22, n], layout) for n, part in chunks(count, PROGRESS_STEP)]


def _drawn_chunk(job: tuple[int, int, list[int], Layout]) -> np.ndarray:
    start, size, stream, layout = job
    rng = np.random.default_rng(stream)
    images = np.empty((size, SIDE, SIDE), dtype=np.uint8)
    for n in range(size):
        images[n] = byte_pixels(_MAKERS[(start + n) % len(_MAKERS)](rng, layout))
    return images


def _made(job: tuple) -> np.ndarray:
    """A job of either kind, (how it is made, what with), so that one pool of workers makes both."""
    make, arguments = job
    return make(arguments)


def chosen_garments(garments: np.ndarray, count: int, seed: int) -> np.ndarray:
    """``count`` of ``garments`` (N, 28, 28), a seeded choice, in the order they come in the file."""
    return garments[seeded_choice(len(garments), count, [seed, 23])]


def garment_outliers(
    images: np.ndarray, layout: Layout = MNIST_LAYOUT, done=lambda n: None, workers: int = 1
) -> np.ndarray:
    """Fashion-MNIST images (N, 28, 28) uint8 placed as photos of them would be: ink cropped, scaled
    into the layout's box and centred, PROGRESS_STEP at a time by ``workers`` processes. ``done(n)``
    is told of every n placed."""
    return images_made_in_workers(_placed_garments, _garment_jobs(images, layout), done, workers)


def _garment_jobs(images: np.ndarray, layout: Layout) -> list[tuple[np.ndarray, Layout]]:
    return [(images[part], layout) for _, part in chunks(len(images), PROGRESS_STEP)]


def _placed_garments(job: tuple[np.ndarray, Layout]) -> np.ndarray:
    images, layout = job
    placed = np.empty_like(images)
    for n, image in enumerate(images):
        placed[n] = byte_pixels(_placed(unit_pixels(image), layout))
    return placed


def _placed(ink: np.ndarray, layout: Layout) -> np.ndarray:
    return place_ink(ink, layout) if ink.max() > 0 else np.zeros((SIDE, SIDE), np.float32)


def _canvas() -> np.ndarray:
    return np.zeros((CANVAS, CANVAS), dtype=np.float32)


def _thickness(rng: np.random.Generator) -> int:
    return int(rng.integers(2, 7))


def _scribble(rng: np.random.Generator, layout: Layout) -> np.ndarray:
    """Three to seven strokes, each a smooth random curve: what a hand does that is not writing."""
    canvas = _canvas()
    for _ in range(int(rng.integers(3, 8))):
        points = _random_walk(rng, int(rng.integers(8, 30)))
        cv2.polylines(canvas, [points], False, float(rng.uniform(0.6, 1.0)), _thickness(rng), cv2.LINE_AA)
    return _placed(canvas, layout)


def _random_walk(rng: np.random.Generator, steps: int) -> np.ndarray:
    """``steps`` steps of a pen turning a little at random, at a constant speed, kept on the canvas:
    (steps + 1, 2) integer points. In plain floats: numpy's calls on single numbers took half the
    time of drawing all the outliers."""
    x, y = rng.uniform(8, CANVAS - 8, 2).tolist()
    heading, speed = rng.uniform(0, 2 * np.pi), rng.uniform(3, 7)
    points = [(x, y)]
    for turn in rng.normal(0, 0.6, steps).tolist():
        heading += turn
        x = min(max(x + speed * math.cos(heading), 2), CANVAS - 3)
        y = min(max(y + speed * math.sin(heading), 2), CANVAS - 3)
        points.append((x, y))
    return np.round(np.array(points)).astype(np.int32)


def _strokes(rng: np.random.Generator, layout: Layout) -> np.ndarray:
    """A few pen strokes that make no digit: straight strokes apart or joined at sharp corners, or open arcs."""
    canvas, colour, width = _canvas(), float(rng.uniform(0.6, 1.0)), _thickness(rng)
    kind = int(rng.integers(0, 3))
    if kind == 0:  # three to five straight strokes, touching or not: a stick figure
        for _ in range(int(rng.integers(3, 6))):
            start = rng.uniform(8, CANVAS - 8, 2)
            end = np.clip(start + rng.uniform(14, 40) * _direction(rng), 4, CANVAS - 4)
            cv2.line(canvas, _point(start), _point(end), colour, width, cv2.LINE_AA)
    elif kind == 1:  # one stroke of three to five straight pieces, turning sharply
        corners = [rng.uniform(10, CANVAS - 10, 2)]
        for _ in range(int(rng.integers(3, 6))):
            corners.append(np.clip(corners[-1] + rng.uniform(16, 40) * _direction(rng), 4, CANVAS - 4))
        cv2.polylines(canvas, [np.round(np.array(corners)).astype(np.int32)], False, colour, width, cv2.LINE_AA)
    else:  # one or two open arcs: hooks, cups and half moons
        centre = rng.uniform(24, 40, 2)
        for _ in range(int(rng.integers(1, 3))):
            axes = _point(rng.uniform(8, 24, 2))
            start = float(rng.uniform(0, 360))
            end = start + float(rng.uniform(90, 250))
            cv2.ellipse(
                canvas, _point(centre), axes, float(rng.uniform(0, 180)), start, end, colour, width, cv2.LINE_AA
            )
    return _placed(canvas, layout)


def _shape(rng: np.random.Generator, layout: Layout) -> np.ndarray:
    """A star, a cross, a grid, a zigzag, a triangle or a filled polygon."""
    canvas, colour, width = _canvas(), float(rng.uniform(0.6, 1.0)), _thickness(rng)
    centre, radius = rng.uniform(24, 40, 2), rng.uniform(12, 26)
    kind = int(rng.integers(0, 6))
    if kind == 0:  # a star of 5 to 9 spokes
        spokes = int(rng.integers(5, 10))
        for angle in rng.uniform(0, np.pi, 1) + np.arange(spokes) * np.pi / spokes:
            offset = radius * np.array([np.cos(angle), np.sin(angle)])
            cv2.line(canvas, _point(centre - offset), _point(centre + offset), colour, width, cv2.LINE_AA)
    elif kind == 1:  # a cross: + or ×, the same two strokes turned
        angle = rng.uniform(0, np.pi / 2)
        for turn in (angle, angle + np.pi / 2):
            offset = radius * np.array([np.cos(turn), np.sin(turn)])
            cv2.line(canvas, _point(centre - offset), _point(centre + offset), colour, width, cv2.LINE_AA)
    elif kind == 2:  # a grid, or hatching in one direction
        lines = int(rng.integers(3, 7))
        for position in np.linspace(8, CANVAS - 8, lines):
            cv2.line(canvas, (int(position), 6), (int(position), CANVAS - 6), colour, width, cv2.LINE_AA)
            if rng.random() < 0.7:
                cv2.line(canvas, (6, int(position)), (CANVAS - 6, int(position)), colour, width, cv2.LINE_AA)
    elif kind == 3:  # a zigzag across
        xs = np.linspace(6, CANVAS - 6, int(rng.integers(5, 11)))
        ys = np.where(np.arange(len(xs)) % 2, 16, CANVAS - 16) + rng.normal(0, 3, len(xs))
        cv2.polylines(canvas, [np.round(np.stack([xs, ys], 1)).astype(np.int32)], False, colour, width, cv2.LINE_AA)
    else:  # a triangle or a polygon, outlined or filled
        sides = 3 if kind == 4 else int(rng.integers(4, 8))
        angles = np.sort(rng.uniform(0, 2 * np.pi, sides))
        corners = np.round(centre + radius * np.stack([np.cos(angles), np.sin(angles)], 1)).astype(np.int32)
        if rng.random() < 0.5:
            cv2.fillPoly(canvas, [corners], colour, cv2.LINE_AA)
        else:
            cv2.polylines(canvas, [corners], True, colour, width, cv2.LINE_AA)
    return _placed(canvas, layout)


def _direction(rng: np.random.Generator) -> np.ndarray:
    angle = rng.uniform(0, 2 * np.pi)
    return np.array([np.cos(angle), np.sin(angle)])


def _point(xy: np.ndarray) -> tuple[int, int]:
    return round(float(xy[0])), round(float(xy[1]))


def _blob(rng: np.random.Generator, layout: Layout) -> np.ndarray:
    """One to three filled discs or ellipses: a dot, a smudge, a thumbprint, scaled into the box."""
    canvas = _canvas()
    for _ in range(int(rng.integers(1, 4))):
        centre = _point(rng.uniform(16, 48, 2))
        axes = _point(rng.uniform(3, 14, 2))
        cv2.ellipse(canvas, centre, axes, float(rng.uniform(0, 180)), 0, 360, float(rng.uniform(0.5, 1)), -1)
    canvas = cv2.GaussianBlur(canvas, (0, 0), float(rng.uniform(0.5, 3)))
    return _placed(canvas, layout)


def _noise(rng: np.random.Generator, layout: Layout) -> np.ndarray:
    """Uniform, Gaussian or salt-and-pepper noise, over the whole image or a patch of it."""
    kind = int(rng.integers(0, 3))
    if kind == 0:
        pixels = rng.uniform(0, 1, (SIDE, SIDE))
    elif kind == 1:
        pixels = rng.normal(rng.uniform(0.2, 0.6), rng.uniform(0.1, 0.4), (SIDE, SIDE))
    else:
        pixels = (rng.random((SIDE, SIDE)) < rng.uniform(0.02, 0.4)).astype(np.float64)
    if rng.random() < 0.4:  # a patch of noise, placed like ink
        return _placed(
            np.clip(pixels, 0, 1).astype(np.float32)[: int(rng.integers(6, 28)), : int(rng.integers(6, 28))], layout
        )
    return np.clip(pixels, 0, 1)


def _blank(rng: np.random.Generator, layout: Layout) -> np.ndarray:
    """An empty image, an evenly grey or full one, or a few faint specks."""
    kind = int(rng.integers(0, 3))
    if kind == 0:
        return np.zeros((SIDE, SIDE))
    if kind == 1:
        return np.full((SIDE, SIDE), rng.uniform(0.05, 1))
    pixels = np.zeros((SIDE, SIDE))
    count = int(rng.integers(1, 6))
    pixels[rng.integers(0, SIDE, count), rng.integers(0, SIDE, count)] = rng.uniform(0.2, 1, count)
    return pixels


_MAKERS = (_scribble, _strokes, _shape, _blob, _noise, _blank)  # DRAWN_KINDS', in turn
