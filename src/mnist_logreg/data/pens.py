"""Digits redrawn with other pens, so that "not a digit" never means "not MNIST's pen".

Every MNIST digit was written with one kind of pen and scanned one way. Users write with thick
markers, fine pens and pencils, photograph out of focus and scan at low resolution; a model
that never saw such strokes learns that they are "not a digit". The default recipe trains on
copies of a seeded choice of its training digits (config.PEN_COPIES_PER_DIGIT), each redrawn with
one of these pens (``PENS``) and then placed as a photo's ink is placed (``preprocess.place_ink``,
after the photo path's cleaning):

- ``thick``: a marker, the strokes dilated;
- ``fine``: a fine pen, the strokes thinned to their skeleton and redrawn narrow;
- ``blurred``: out of focus, a Gaussian blur;
- ``low-res``: a small scan enlarged: the digit at 7–16 px, scaled up again, blocky or smooth;
- ``faint``: pale ink over a sensor's noise, which the photo path's cleaning has to find;
- ``warped``: the hand itself varies: a small rotation and shear, and an elastic distortion
  (Simard et al. 2003, "Best practices for convolutional neural networks").

Each pen has the parameters training draws from (``train``) and others, never the training's,
for the pens test set (tests/pens.py): a test there measures a pen, not a memorised copy.
The copies are deterministic given the seed, and drawn with OpenCV at four times MNIST's size
so that widths and blurs come in quarter pixels.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from ..config import PEN_COPIES_PER_DIGIT, PEN_SHARES
from ..images.inputs import SIDE, byte_pixels, unit_pixels
from ..images.layout import Layout
from ..images.preprocess import NoInk, clean_ink, place_ink
from . import prepared
from .catalog import DATASETS

SCALE = 4  # pens draw on the digit enlarged this many times: 112 × 112
BIG = SIDE * SCALE
MNIST_LAYOUT = DATASETS["mnist"].layout


@dataclass(frozen=True)
class Pen:
    """One way of redrawing a digit: ``draw(ink, value, rng)`` on the enlarged digit's ink
    (BIG × BIG float32, light on black), with ``value`` one of the pen's parameters."""

    name: str
    describes: str  # what the parameter is, for the report and the docs
    train: tuple  # the parameters training draws from
    test: tuple  # the pens test set's: none of them the training's
    draw: Callable[[np.ndarray, float, np.random.Generator], np.ndarray]


def _disc(diameter: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (diameter, diameter))


def _thick(ink: np.ndarray, width: float, rng: np.random.Generator) -> np.ndarray:
    return cv2.dilate(ink, _disc(int(width)))


def _skeleton(mask: np.ndarray) -> np.ndarray:
    """The morphological skeleton (Lantuéjoul's) of a binary mask: what erosion leaves of each stroke's middle."""
    skeleton = np.zeros_like(mask)
    cross = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
    while mask.any():
        eroded = cv2.erode(mask, cross)
        skeleton |= mask & ~cv2.dilate(eroded, cross)
        mask = eroded
    return skeleton


def _fine(ink: np.ndarray, width: float, rng: np.random.Generator) -> np.ndarray:
    middle = _skeleton((ink > 0.5).astype(np.uint8) * 255)
    redrawn = unit_pixels(cv2.dilate(middle, _disc(int(width))))
    return cv2.GaussianBlur(redrawn, (0, 0), 1.0)  # a pen's edge is soft, as a scan has it


def _blurred(ink: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    return cv2.GaussianBlur(ink, (0, 0), sigma)


def _low_res(ink: np.ndarray, side: float, rng: np.random.Generator) -> np.ndarray:
    """The digit scanned with its longer side ``side`` pixels, then enlarged back where it was:
    blocky (nearest neighbour) or smooth (bilinear), half of each."""
    rows, cols = np.nonzero(ink > 0.05)
    top, bottom, left, right = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    crop = ink[top:bottom, left:right]
    scale = side / max(crop.shape)
    size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
    small = cv2.resize(crop, size, interpolation=cv2.INTER_AREA)
    grow = cv2.INTER_NEAREST if rng.random() < 0.5 else cv2.INTER_LINEAR
    scanned = np.zeros_like(ink)
    scanned[top:bottom, left:right] = cv2.resize(small, (crop.shape[1], crop.shape[0]), interpolation=grow)
    return scanned


def _faint(ink: np.ndarray, contrast: float, rng: np.random.Generator) -> np.ndarray:
    """Pale ink, ``contrast`` of full strength, over the faint noise of a sensor: the photo path's
    cleaning (``preprocess.clean_ink``) has to find it."""
    return contrast * ink + np.abs(rng.normal(0, 0.01, ink.shape)).astype(np.float32)


def _warped(ink: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    """A rotation of up to 12·``strength``°, a shear of up to 0.25·``strength``, and an elastic
    distortion: a random displacement field smoothed by a Gaussian (σ 4 px at MNIST's size) and
    scaled to about ``strength`` pixels there (Simard et al. 2003)."""
    angle = np.deg2rad(rng.uniform(-12, 12) * strength)
    shear = rng.uniform(-0.25, 0.25) * strength
    rotate = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    inverse = np.linalg.inv(rotate @ np.array([[1, shear], [0, 1]]))
    # The maps are made at MNIST's size, where the field is smoothed cheaply, then enlarged.
    ys, xs = np.mgrid[0:SIDE, 0:SIDE].astype(np.float64) + 0.5
    source = np.stack([xs - SIDE / 2, ys - SIDE / 2], -1) @ inverse.T + SIDE / 2
    field = np.stack([cv2.GaussianBlur(rng.uniform(-1, 1, (SIDE, SIDE)), (0, 0), 4) for _ in range(2)], -1)
    source += field / max(float(np.abs(field).max()), 1e-6) * strength
    map_x, map_y = (cv2.resize((source[..., i] * SCALE - 0.5).astype(np.float32), (BIG, BIG)) for i in (0, 1))
    return cv2.remap(ink, map_x, map_y, cv2.INTER_LINEAR, borderValue=0)


# Parameters at SCALE (112 px for MNIST's 28): a digit's stroke is about 10 px wide there.
PENS: dict[str, Pen] = {
    pen.name: pen
    for pen in (
        Pen(
            "thick", "disc diameter the strokes are dilated by, px at 112", (7, 11, 15, 19, 23), (9, 13, 17, 21), _thick
        ),
        Pen("fine", "stroke width after thinning, px at 112", (3, 5), (2, 4), _fine),
        Pen("blurred", "Gaussian σ, px at 112", (4, 6, 8, 10, 12), (5, 7, 9, 11), _blurred),
        Pen("low-res", "longer side of the scanned digit, px", (7, 9, 11, 13, 15), (8, 10, 12, 14, 16), _low_res),
        Pen("faint", "ink contrast on the paper", (0.15, 0.3), (0.2, 0.4), _faint),
        Pen("warped", "strength: rotation, shear and elastic distortion", (0.6, 1.0), (0.8, 1.2), _warped),
    )
}


def redrawn_ink(digit: np.ndarray, pen: str, value: float, rng: np.random.Generator) -> np.ndarray:
    """One digit (28, 28) uint8, light on black, enlarged to BIG × BIG and redrawn with ``pen`` at
    ``value``: float32 ink in [0, 1], light on black, as a scan of it would hold it. Raises NoInk
    where the pen leaves nothing to read (a faint, thin digit can fade out)."""
    enlarged = cv2.resize(unit_pixels(digit), (BIG, BIG), interpolation=cv2.INTER_CUBIC)
    return np.clip(PENS[pen].draw(np.clip(enlarged, 0, 1), value, rng), 0, 1).astype(np.float32)


def redraw(
    digit: np.ndarray, pen: str, value: float, rng: np.random.Generator, layout: Layout = MNIST_LAYOUT
) -> np.ndarray:
    """One digit (28, 28) uint8, light on black, redrawn with ``pen`` at ``value`` and placed as a
    photo's ink is placed: (28, 28) float32 in [0, 1]."""
    try:
        return place_ink(clean_ink(redrawn_ink(digit, pen, value, rng)), layout)
    except NoInk:  # a faint, thin digit can fade out entirely: kept as it was
        return unit_pixels(digit)


def pen_copies(
    digits: np.ndarray,
    shares: dict[str, float],
    seed: int,
    *,
    layout: Layout = MNIST_LAYOUT,
    which: str = "train",
    done: Callable[[int], None] = lambda n: None,
    workers: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """One copy of each digit (N, 28, 28) uint8, redrawn with a pen of ``shares`` (its kind in those
    proportions, in a seeded order) at one of the pen's ``which`` parameters ("train" or "test"):
    the copies (N, 28, 28) uint8, and the index of each copy's pen in ``shares``. The same for the
    same seed, made by any number of ``workers`` processes. ``done(n)`` is told of every n made."""
    names = list(shares)
    weights = np.array([shares[name] for name in names], dtype=np.float64)
    # Streams of their own: the outliers' and the split's stay as they were; each chunk of CHUNK
    # digits draws from one of its own.
    kinds = np.random.default_rng([seed, 30]).choice(len(names), size=len(digits), p=weights / weights.sum())
    jobs = [
        (digits[part], kinds[part], names, [seed, 30, n], layout, which)
        for n, part in prepared.chunks(len(digits), CHUNK)
    ]
    return prepared.images_made_in_workers(_chunk_copies, jobs, done, workers), kinds


def _chunk_copies(job: tuple) -> np.ndarray:
    """The copies of one chunk of digits: (digits, their pens' indices in ``names``, names, the
    chunk's random stream, layout, "train" or "test"), drawn as ``pen_copies`` says."""
    digits, kinds, names, stream, layout, which = job
    rng = np.random.default_rng(stream)
    copies = np.empty_like(digits)
    for n, (digit, kind) in enumerate(zip(digits, kinds, strict=True)):
        pen = PENS[names[kind]]
        values = getattr(pen, which)
        value = values[int(rng.integers(len(values)))]
        copies[n] = byte_pixels(redraw(digit, pen.name, value, rng, layout))
    return copies


CHUNK = 1000  # copies drawn from one random stream, and made between two updates of a progress bar


def training_copies(
    digits: np.ndarray,
    labels: np.ndarray,
    key: dict,
    seed: int,
    data_dir: Path | str,
    *,
    making: prepared.Making = prepared.DEFAULT_MAKING,
) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """The pen copies a run trains on beside its training ``digits`` (N, 28, 28) uint8: one copy of
    each of a seeded choice of PEN_COPIES_PER_DIGIT × N of them, of the kinds in PEN_SHARES; their
    labels; and how many of each kind.

    ``key`` names the digits (the dataset's checksum and the split): with the seed, the layout,
    the shares and this code, it is what the copies are kept under in ``data_dir/pens/``, read
    back the next time; ``making.cache=False`` neither reads nor writes that file.
    ``making.workers`` processes make them where they are not kept.
    """
    names = list(PEN_SHARES)
    key_text = json.dumps(
        {
            "digits": key,
            "seed": seed,
            "layout": asdict(making.layout),
            "copies": PEN_COPIES_PER_DIGIT,
            "shares": PEN_SHARES,
            "code": prepared.code_digest("data.pens", "images.preprocess"),
        },
        sort_keys=True,
    )
    path = prepared.prepared_path(data_dir, "pens", key_text)
    chosen = chosen_digits(len(digits), seed)
    shape = (len(chosen), SIDE, SIDE)

    def holds(kept: dict[str, np.ndarray]) -> bool:
        return kept["images"].shape == shape and kept["kinds"].shape == shape[:1]

    kept = prepared.read_prepared(path, key_text, making.log, what="pen copies", holds=holds) if making.cache else None
    if kept is not None:
        making.log(f"{len(kept['images']):,} digits redrawn with other pens from {path}")
        copies, kinds = kept["images"], kept["kinds"]
    else:
        making.log(f"redrawing {len(chosen):,} digits with other pens ({', '.join(names)}) ...")
        with prepared.progress_bar(len(chosen), "pens", making.progress) as bar:
            copies, kinds = pen_copies(
                digits[chosen],
                PEN_SHARES,
                seed,
                layout=making.layout,
                which="train",
                done=bar.update,
                workers=making.workers,
            )
        if making.cache:
            prepared.write_prepared(path, key_text, {"images": copies, "kinds": kinds})
    counts = {name: int((kinds == n).sum()) for n, name in enumerate(names)}
    return copies, labels[chosen], counts


def chosen_digits(count: int, seed: int) -> np.ndarray:
    """The indices of the training digits a run redraws with other pens, of ``count``: a seeded
    choice of PEN_COPIES_PER_DIGIT of them, in order."""
    return prepared.seeded_choice(count, round(PEN_COPIES_PER_DIGIT * count), [seed, 31])


def pens_record(counts: dict[str, int]) -> dict:
    """What model.json records of a run's pen copies (RunInfo.pens)."""
    return {
        "copies_per_digit": PEN_COPIES_PER_DIGIT,
        "shares": dict(PEN_SHARES),
        "counts": counts,
        "parameters": {name: list(PENS[name].train) for name in PEN_SHARES},
    }
