"""A photo or drawing made to look like MNIST: a 28×28 image, light ink on black, placed as the dataset's are.

MNIST digits are light ink on black, scaled so the longer side of the ink fits 20 px, and
centred by centre of mass in 28×28. A photo of a digit is dark ink on light paper, unevenly
lit, large and off-centre; fed in with a plain resize, a model that scores 92 % on the test set
gets about one in ten right. ``preprocess_array`` is the one path every image takes (the
command line, the library and the server); what the model then does to the 28×28 image, its
input transform and feature map, is ``images/inputs.py``'s.

torch is imported only where a tensor is asked for: predicting with a run's torch-free weights
needs none of it.
"""

from __future__ import annotations

import io
import math
import warnings
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import UserError
from .inputs import SIDE, byte_pixels, unit_pixels
from .layout import Layout

MAX_PIXELS = 40_000_000  # refuse larger images before decoding: a decompression bomb must not eat memory
WORKING_SIDE = 384  # images are cleaned at this size: enough for strokes, cheap for filters
MIN_WORKING_SIDE = 112  # smaller images are grown to this first
MIN_CONTRAST = 0.08  # ink must differ from the background by this much (of the full range)
# The background (paper and its lighting) is estimated on a copy whose shorter side is
# BACKGROUND_SIDE pixels, by an opening over BACKGROUND_WINDOW pixels: wider than any stroke, so
# that no stroke is taken for paper. The shorter side, as a digit's height and its strokes scale
# with it: on a wide page of a number, a window of the longer side would span the whole height. A window of 13 took a marker's strokes for paper and left
# their outlines (a thick-pen test set, docs/not-a-digit.md: accepted 0.67 with 13, 0.88 with 21).
BACKGROUND_SIDE = 64
BACKGROUND_WINDOW = 21


class ImageError(UserError, ValueError):
    """An image that cannot be read or holds nothing to classify. The message says which and why."""


class NoInk(ImageError):
    """A readable image with nothing written on it: blank, one flat colour, or too faint. The
    clearest "not a digit" there is: predicting answers it as one (``classify.predict_image_file``)."""


class ImageTooLarge(ImageError):
    """An image over MAX_PIXELS, refused before it is decoded."""


def open_image(source: str | Path | bytes, reduce_to: int | None = None) -> Image.Image:
    """Open a file (or bytes) with Pillow, refusing what is not an image, too big, or unreadable.

    Returns the first frame, decoded, turned upright by its EXIF orientation. With
    ``reduce_to``, a JPEG is decoded at a reduced scale (1/2, 1/4 or 1/8, in the decoder itself)
    as long as its longer side stays at least ``reduce_to`` pixels: a 12-megapixel photo then
    decodes in a fraction of the time and memory.
    """
    try:
        with warnings.catch_warnings():
            # Pillow warns between its own limit and twice that, where it raises; ours is lower.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            warnings.simplefilter("ignore", UserWarning)  # Pillow's notes on damaged metadata: the error says enough
            return _open_checked(source, reduce_to)
    except ImageError:
        raise
    except FileNotFoundError:
        raise ImageError("no such file") from None
    except IsADirectoryError:
        raise ImageError("is a folder, not an image") from None
    except Image.DecompressionBombError:
        raise ImageTooLarge(f"over the limit of {MAX_PIXELS / 1e6:.0f} megapixels") from None
    except UnidentifiedImageError:
        raise ImageError("not an image Pillow can read") from None
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise ImageError(f"truncated or corrupt image ({error})") from None
    except Exception as error:  # Pillow's decoders raise other classes on hostile bytes too
        raise ImageError(f"the image could not be decoded ({type(error).__name__})") from None


def _open_checked(source: str | Path | bytes, reduce_to: int | None) -> Image.Image:
    if isinstance(source, bytes):
        if not source:
            raise ImageError("empty file")
        image = Image.open(io.BytesIO(source))
    else:
        if Path(source).is_file() and Path(source).stat().st_size == 0:
            raise ImageError("empty file")
        image = Image.open(source)
    with image:  # closes the file; exif_transpose returns a decoded copy
        pixels = image.width * image.height
        if pixels > MAX_PIXELS:
            raise ImageTooLarge(
                f"{image.width}×{image.height} is {pixels / 1e6:.0f} megapixels, over the limit of "
                f"{MAX_PIXELS / 1e6:.0f}"
            )
        image.seek(0)  # GIF, TIFF, WebP: the first frame
        stored_side = max(image.size)  # before any reduced decoding; EXIF rotation keeps it
        if reduce_to and image.format == "JPEG" and max(image.size) > 2 * reduce_to:
            scale = reduce_to / max(image.size)  # draft keeps both sides at least what is asked
            image.draft(image.mode, (math.ceil(image.width * scale), math.ceil(image.height * scale)))
        image.load()
        upright = ImageOps.exif_transpose(image)
        upright.info["stored_side"] = stored_side
        return upright


def _grey_and_alpha(image: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """Grey levels in [0, 1] as float32, and alpha in [0, 1] where the image has transparency."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        grey = np.nan_to_num(np.asarray(image, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
        # The range the values are in: 16-bit PNGs use the full 16-bit range, float images may
        # hold [0, 1] (a "blank" 1/255 of the 8-bit range otherwise) or [0, 255].
        peak = float(grey.max(initial=0.0))
        top = 65535.0 if peak > 255 else 1.0 if image.mode == "F" and peak <= 1.0 else 255.0
        return np.clip(grey / top, 0, 1), None
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
    if has_alpha:
        rgba = np.asarray(image.convert("RGBA"))
        grey = cv2.cvtColor(np.ascontiguousarray(rgba[..., :3]), cv2.COLOR_RGB2GRAY)  # 0.299 R + 0.587 G + 0.114 B
        return unit_pixels(grey), unit_pixels(rgba[..., 3])
    return unit_pixels(image.convert("L")), None


def _composite(grey: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Put a drawing with transparency onto a background that contrasts with its strokes.

    Strokes on a transparent canvas can be any colour, black included, and the transparent
    pixels' own colour is arbitrary: compositing onto a fixed white (or black) would lose
    strokes of that colour. The background is chosen opposite to the strokes' mean grey.
    """
    if alpha.min() > 0.99:  # opaque everywhere: the alpha channel says nothing
        return grey
    stroke_grey = float((grey * alpha).sum() / max(float(alpha.sum()), 1e-9))
    background = 1.0 if stroke_grey < 0.5 else 0.0
    return grey * alpha + background * (1 - alpha)


def _resize(values: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A float32 image resized to ``size`` (width, height): area averaging to shrink, bilinear to grow."""
    shrinking = size[0] * size[1] < values.shape[0] * values.shape[1]
    return cv2.resize(values, size, interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def _longest_side_size(shape: tuple[int, int], longest: int) -> tuple[int, int]:
    """(width, height) with the longer side ``longest`` pixels, keeping the aspect ratio."""
    height, width = shape
    scale = longest / max(height, width)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _shorter_side_size(shape: tuple[int, int], shorter: int) -> tuple[int, int]:
    """(width, height) with the shorter side ``shorter`` pixels, keeping the aspect ratio."""
    height, width = shape
    return _longest_side_size(shape, round(shorter * max(height, width) / min(height, width)))


def _to_working_size(grey: np.ndarray) -> np.ndarray:
    """The image at the working size: shrunk to WORKING_SIDE, or a small one (a 28×28 scan) grown to
    MIN_WORKING_SIDE, so that the cleaning's 3×3 median filter is fine against its strokes."""
    if max(grey.shape) > WORKING_SIDE:
        return _resize(grey, _longest_side_size(grey.shape, WORKING_SIDE))
    if MIN_WORKING_SIDE and max(grey.shape) < MIN_WORKING_SIDE:
        return _resize(grey, _longest_side_size(grey.shape, MIN_WORKING_SIDE))
    return grey


def _box_blur(values: np.ndarray, radius: int) -> np.ndarray:
    """Mean over a (2r+1)² window, edges extended."""
    size = 2 * radius + 1
    return cv2.blur(values, (size, size), borderType=cv2.BORDER_REPLICATE)


def _opening(values: np.ndarray, size: int) -> np.ndarray:
    """Minimum then maximum over size × size windows: removes bright shapes narrower than ``size``.

    The image is first extended past its edges by odd reflection (a gradient carries on as it
    was going): replicated edges would make the opening of a lighting gradient fall short of it
    along the edges by up to half a window, and that band would read as ink."""
    pad = size
    extended = np.pad(values, pad, mode="reflect", reflect_type="odd")
    opened = cv2.morphologyEx(
        extended, cv2.MORPH_OPEN, np.ones((size, size), np.uint8), borderType=cv2.BORDER_REPLICATE
    )
    return opened[pad:-pad, pad:-pad]


def _percentiles(grey: np.ndarray, fractions: tuple[float, ...]) -> list[float]:
    """Grey levels below which these fractions of the pixels lie, to 1/255 (from a 256-bin histogram)."""
    counts = cv2.calcHist([byte_pixels(grey)], [0], None, [256], [0, 256]).ravel()
    cumulative = np.cumsum(counts) / counts.sum()
    return [float(np.searchsorted(cumulative, fraction)) / 255 for fraction in fractions]


def _otsu(values: np.ndarray) -> float:
    """Otsu's threshold of values in [0, 1], to 1/255: the cut that maximises the between-class variance."""
    levels = cv2.convertScaleAbs(values, alpha=255)  # byte_pixels' levels, rounded alike, in one pass
    threshold, _ = cv2.threshold(levels, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return float(threshold) / 255


def _border_level(grey: np.ndarray) -> np.floating:
    """The median grey level of the image's outermost pixels: its background, mostly."""
    return np.median(np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]]))


def ink_from_grey(grey: np.ndarray) -> np.ndarray:
    """Ink intensity in [0, 1], light on dark, from grey levels in [0, 1], with background lighting
    and noise removed."""
    # Polarity: the border is mostly background. Ink is whatever lies far from it: if the
    # background sits nearer the light end of the image's range, the ink is dark, so invert.
    border_level = _border_level(grey)
    darkest, lightest = _percentiles(grey, (0.001, 0.999))  # robust to stray pixels; ink may be under 1 %
    if lightest - border_level < border_level - darkest:
        grey = 1.0 - grey
    # Uneven lighting: estimate the background by an opening wider than any stroke, computed on
    # a small copy and scaled back up, and subtract it.
    small = _resize(grey, _shorter_side_size(grey.shape, BACKGROUND_SIDE))
    background = _box_blur(_opening(small, BACKGROUND_WINDOW), 3)  # the blur smooths the opening's blocky steps
    height, width = grey.shape
    background = cv2.resize(background, (width, height), interpolation=cv2.INTER_LINEAR)
    return clean_ink(np.maximum(grey - background, 0))


def clean_ink(ink: np.ndarray) -> np.ndarray:
    """Ink without salt-and-pepper noise or paper texture, scaled so that its strongest stroke is 1."""
    ink = cv2.medianBlur(ink, 3)
    top = float(ink.max())  # after the median filter, a lone bright pixel cannot set the scale
    if top < MIN_CONTRAST:
        raise NoInk("no ink found: the image is blank or has too little contrast")
    ink = np.minimum(ink / top, 1)
    # What is left of paper texture sits well below the strokes: Otsu's threshold separates them.
    # Half of it keeps the strokes' soft edges, which MNIST's anti-aliased digits have too.
    ink[ink < _otsu(ink) / 2] = 0
    return ink


def _crop_to_ink(ink: np.ndarray) -> np.ndarray:
    """The bounding box of the ink, ignoring specks that hold a negligible share of it."""
    rows, cols = ink.sum(axis=1, dtype=np.float64), ink.sum(axis=0, dtype=np.float64)
    total = rows.sum()
    if total <= 0:
        raise NoInk("no ink found: nothing is left after removing the background")

    def span(mass: np.ndarray) -> tuple[int, int]:
        start, end = np.searchsorted(np.cumsum(mass) / total, (0.002, 0.998)).tolist()
        return start, end + 1

    top, bottom = span(rows)
    left, right = span(cols)
    return ink[top:bottom, left:right]


def _framed(values: np.ndarray, widths: tuple[int, int, int, int]) -> np.ndarray:
    """``values`` in a frame of zeros (top, bottom, left, right pixels wide): np.pad's result, at a
    tenth of its cost, which counts where every training copy and outlier is placed."""
    return cv2.copyMakeBorder(values, *widths, cv2.BORDER_CONSTANT, value=0)


def centre_of_mass(values: np.ndarray) -> tuple[float, float]:
    """(row, column) of an image's centre of mass, from its image moments."""
    # Two zero columns on the right change no moment, and keep an image one or two pixels wide
    # from being taken for a list of (x, y) points, which is what OpenCV makes of an N×2 array.
    moments = cv2.moments(_framed(values.astype(np.float32), (0, 0, 0, 2)))
    return moments["m01"] / moments["m00"], moments["m10"] / moments["m00"]


# MNIST's strokes, once placed, are 1.8 to 4.0 px wide (5th and 95th percentiles of its training
# digits; median 2.5), measured as twice the median distance from a stroke's middle to its edge.
# A photo's strokes outside that range are brought to its nearest end before the ink is placed
# (``even_stroke_width``): a line drawn 4 px wide on a 300 px page would otherwise be placed
# one pixel wide, and a marker's strokes wider than any MNIST digit's. None: strokes stay as drawn.
STROKE_RANGE: tuple[float, float] | None = (1.8, 4.0)


def stroke_width(ink: np.ndarray) -> float:
    """Twice the median distance from a stroke's middle (the distance transform's ridge) to its edge, in pixels."""
    mask = (ink > 0.5 * float(ink.max())).astype(np.uint8)
    distance = cv2.distanceTransform(_framed(mask, (1, 1, 1, 1)), cv2.DIST_L2, 5)[1:-1, 1:-1]
    ridge = (distance > 0) & (distance >= cv2.dilate(distance, np.ones((3, 3), np.uint8)) - 1e-6)
    return 2 * _median(distance[ridge]) if ridge.any() else 0.0


def _median(values: np.ndarray) -> float:
    """np.median of a few hundred values, exactly, in a tenth of its time (it costs where every training
    copy and outlier is placed): the middle value once sorted, or the mean of the middle two."""
    ordered = np.sort(values)
    return float((ordered[(len(ordered) - 1) // 2] + ordered[len(ordered) // 2]) / 2)


def even_stroke_width(ink: np.ndarray, scale: float) -> np.ndarray:
    """Ink whose strokes, once scaled by ``scale`` into the box, are as wide as MNIST's (STROKE_RANGE):
    thinner strokes dilated, wider ones eroded, by a disc in the ink's own pixels."""
    if STROKE_RANGE is None or ink.max() <= 0:
        return ink
    placed = stroke_width(ink) * scale
    low, high = STROKE_RANGE
    if low <= placed <= high or placed == 0:
        return ink
    change = ((low if placed < low else high) - placed) / scale  # in the ink's pixels: + widen, - narrow
    diameter = 2 * round(abs(change) / 2) + 1
    if diameter < 3:
        return ink
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (diameter, diameter))
    if change < 0:
        eroded = cv2.erode(ink, disc)
        return eroded if eroded.max() >= 0.5 * ink.max() else ink  # never erode a stroke away
    return cv2.dilate(_framed(ink, (diameter,) * 4), disc)  # room to grow: the ink is cropped to itself


def _place(ink: np.ndarray, layout: Layout) -> np.ndarray:
    """Scale the longer side to the layout's box, keep the aspect ratio, and centre in 28×28."""
    size = _longest_side_size(ink.shape, layout.box)
    if size[0] * size[1] < ink.size:  # shrink by area averaging: the anti-aliased strokes MNIST has
        digit = cv2.resize(ink, size, interpolation=cv2.INTER_AREA)
    else:  # a small crop grown to the box: Lanczos keeps its edges sharp
        digit = np.maximum(cv2.resize(ink, size, interpolation=cv2.INTER_LANCZOS4), 0)
    canvas = np.zeros((SIDE, SIDE), dtype=np.float32)
    h, w = digit.shape
    if layout.centre_of_mass and digit.sum() > 0:
        cy, cx = centre_of_mass(digit)
        top, left = round(SIDE / 2 - cy), round(SIDE / 2 - cx)  # MNIST digits have their centre of mass at (14, 14)
    else:
        top, left = (SIDE - h) // 2, (SIDE - w) // 2
    top, left = min(max(top, 0), SIDE - h), min(max(left, 0), SIDE - w)  # never push ink off the canvas
    canvas[top : top + h, left : left + w] = digit
    peak = canvas.max()
    return np.minimum(canvas / peak, 1) if peak > 0 else canvas


def preprocess_array(image: Image.Image, layout: Layout = Layout()) -> np.ndarray:
    """A photo or drawing as the model's input: (28, 28) float32 in [0, 1], light ink on black.

    Composites transparency, decides the polarity from the image, removes uneven lighting and
    noise, crops to the ink, scales it into the layout's box and centres it (MNIST: 20 px, by
    centre of mass). Pixels are in [0, 1], as the models are trained on them (ToTensor's scale).
    An image placed so already (``already_placed``: an MNIST digit saved as a file) is taken as it
    is. A layout that is not ``cleaned`` takes the image's grey levels as they are, resized to 28×28.
    """
    if not layout.cleaned:
        return plain_grey(image)
    grey = _upright_grey(image)
    placed = already_placed(grey, layout)
    return placed if placed is not None else place_ink(ink_from_grey(_to_working_size(grey)), layout)


# An image is taken as placed already when, on a clean background (its border's median within
# PLACED_BACKGROUND of black or white), the ink above PLACED_INK spans the layout's box to within
# PLACED_SLACK px on its longer side (each of MNIST's test digits spans 19 or 20 px of its 20) and
# sits within PLACED_SLACK px of where the layout centres it (MNIST's centres of mass: within 0.5).
PLACED_BACKGROUND = 0.1
PLACED_INK = 0.1
PLACED_SLACK = 1


def already_placed(grey: np.ndarray, layout: Layout) -> np.ndarray | None:
    """A 28×28 image already placed as ``layout`` places ink, made light on black: None for any other.

    An MNIST digit saved as a file is the model's input already. Placed again, it loses a little:
    the cleaning zeroes its faintest anti-aliasing, the crop trims its outer 0.2 % of ink, and the
    digit is scaled by a pixel and shifted by a fraction of one. The default run accepted 500 test
    digits read back from PNG files 0.940 of the time against 0.959 as arrays (bench.pens).
    """
    if grey.shape != (SIDE, SIDE):
        return None
    level = float(_border_level(grey))
    if PLACED_BACKGROUND < level < 1 - PLACED_BACKGROUND:
        return None
    ink = np.clip(1 - grey if level > 0.5 else grey, 0, 1).astype(np.float32)
    rows, cols = np.nonzero(ink > PLACED_INK)
    if not len(rows) or not layout.box - PLACED_SLACK <= max(np.ptp(rows), np.ptp(cols)) + 1 <= layout.box:
        return None
    if layout.centre_of_mass:
        centre, (row, col) = SIDE / 2, centre_of_mass(ink)  # where _place puts a centre of mass
    else:
        centre, row, col = (SIDE - 1) / 2, (rows.min() + rows.max()) / 2, (cols.min() + cols.max()) / 2
    return ink if max(abs(row - centre), abs(col - centre)) <= PLACED_SLACK else None


def preprocess_file(source: str | Path | bytes, layout: Layout = Layout()) -> np.ndarray:
    """An image file (or its bytes) opened at the working size and made the model's input, as
    ``preprocess_array`` makes it. Raises ImageError for a file that is not a readable image."""
    return preprocess_array(open_image(source, reduce_to=WORKING_SIDE), layout)


def plain_grey(image: Image.Image) -> np.ndarray:
    """The image's grey levels, upright, resized to 28×28 by area averaging: (28, 28) float32 in [0, 1].
    Transparent parts are black, as the background of a Fashion-MNIST picture is."""
    grey, alpha = _grey_and_alpha(ImageOps.exif_transpose(image))
    if alpha is not None:
        grey = grey * alpha
    return np.clip(_resize(np.ascontiguousarray(grey, dtype=np.float32), (SIDE, SIDE)), 0, 1)


def ink_of(image: Image.Image) -> np.ndarray:
    """The image's ink, cleaned, light on black, in [0, 1], at the working size (longer side at most
    WORKING_SIDE): steps 1 to 4 of ``preprocess_array``."""
    return ink_from_grey(_to_working_size(_upright_grey(image)))


def _upright_grey(image: Image.Image) -> np.ndarray:
    """The image's grey levels in [0, 1], float32, upright, any transparency composited."""
    grey, alpha = _grey_and_alpha(ImageOps.exif_transpose(image))
    if alpha is not None:
        grey = _composite(grey, alpha)
    return np.ascontiguousarray(grey, dtype=np.float32)


def place_ink(ink: np.ndarray, layout: Layout = Layout()) -> np.ndarray:
    """Ink (light on black) cropped to itself, its strokes made as wide as MNIST's, scaled into the
    layout's box and placed in 28×28."""
    crop = _crop_to_ink(ink)
    evened = even_stroke_width(crop, layout.box / max(crop.shape))
    return _place(crop if evened is crop else _crop_to_ink(evened), layout)


def preprocess_image(image: Image.Image, layout: Layout = Layout()):
    """``preprocess_array`` as a torch tensor (1, 28, 28), the lesson's image shape."""
    import torch

    return torch.from_numpy(preprocess_array(image, layout)).unsqueeze(0)
