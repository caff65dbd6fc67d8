"""Images to model inputs: a photo or drawing made to look like MNIST, and the input transforms.

MNIST digits are light ink on black, scaled so the longer side of the ink fits 20 px, and
centred by centre of mass in 28×28. A photo of a digit is dark ink on light paper, unevenly
lit, large and off-centre; fed in with a plain resize, a model that scores 92 % on the test set
gets about one in ten right. ``preprocess_image`` is the one path every caller goes through.

An input transform is what a run's model does to every 28×28 input before its linear layer
(model.json's ``input_transform``): ``"none"``, or ``"deskew"``, which shears each digit
upright. ``apply_input_transform`` is the one place it is applied.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageFilter, ImageOps, UnidentifiedImageError

from .datasets import Layout

SIDE = 28  # every model input is SIDE × SIDE pixels
MAX_PIXELS = 40_000_000  # refuse larger images before decoding: a decompression bomb must not eat memory
WORKING_SIDE = 512  # images are cleaned at this size: enough for strokes, cheap for filters
MIN_CONTRAST = 0.08  # ink must differ from the background by this much (of the full range)


class ImageError(ValueError):
    """An image that cannot be read or holds nothing to classify. The message says which and why."""


class ImageTooLarge(ImageError):
    """An image over MAX_PIXELS, refused before it is decoded."""


def open_image(source: str | Path | bytes) -> Image.Image:
    """Open a file (or bytes) with Pillow, refusing what is not an image, too big, or unreadable.

    Returns the first frame, decoded, turned upright by its EXIF orientation.
    """
    try:
        with warnings.catch_warnings():
            # Pillow warns between its own limit and twice that, where it raises; ours is lower.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return _open_checked(source)
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


def _open_checked(source: str | Path | bytes) -> Image.Image:
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
        image.load()
        return ImageOps.exif_transpose(image)


def _grey_and_alpha(image: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """Grey levels in [0, 1] as float, and alpha in [0, 1] where the image has transparency."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        grey = np.asarray(image, dtype=np.float64)
        top = 65535.0 if grey.max() > 255 else 255.0  # 16-bit PNGs use the full 16-bit range
        return np.clip(grey / top, 0, 1), None
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
    if has_alpha:
        rgba = np.asarray(image.convert("RGBA"), dtype=np.float64) / 255
        grey = rgba[..., :3] @ np.array([0.299, 0.587, 0.114])
        return grey, rgba[..., 3]
    return np.asarray(image.convert("L"), dtype=np.float64) / 255, None


def _composite(grey: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Put a drawing with transparency onto a background that contrasts with its strokes.

    Strokes on a transparent canvas can be any colour, black included, and the transparent
    pixels' own colour is arbitrary: compositing onto a fixed white (or black) would lose
    strokes of that colour. The background is chosen opposite to the strokes' mean grey.
    """
    if alpha.min() > 0.99:  # opaque everywhere: the alpha channel says nothing
        return grey
    stroke_grey = (grey * alpha).sum() / max(alpha.sum(), 1e-9)
    background = 1.0 if stroke_grey < 0.5 else 0.0
    return grey * alpha + background * (1 - alpha)


def _resize(values: np.ndarray, size: tuple[int, int], resample: Image.Resampling) -> np.ndarray:
    """A float image resized to ``size`` (width, height) by Pillow, as float64."""
    return np.asarray(Image.fromarray(values.astype(np.float32), mode="F").resize(size, resample), dtype=np.float64)


def _resize_longest(values: np.ndarray, longest: int, resample: Image.Resampling) -> np.ndarray:
    """Resized so that the longer side is ``longest`` pixels, keeping the aspect ratio."""
    height, width = values.shape
    scale = longest / max(height, width)
    return _resize(values, (max(1, round(width * scale)), max(1, round(height * scale))), resample)


def _to_working_size(grey: np.ndarray) -> np.ndarray:
    if max(grey.shape) <= WORKING_SIDE:
        return grey
    return _resize_longest(grey, WORKING_SIDE, Image.Resampling.BOX)


def _filter(values: np.ndarray, image_filter) -> np.ndarray:
    return np.asarray(Image.fromarray(values.astype(np.float32), mode="F").filter(image_filter), dtype=np.float64)


def _box_blur(values: np.ndarray, radius: int) -> np.ndarray:
    """Mean over a (2r+1)² window, edges extended (Pillow's blurs do not take float images)."""
    size = 2 * radius + 1
    padded = np.pad(values, radius, mode="edge")
    kernel = np.ones(size) / size
    rows = np.apply_along_axis(lambda r: np.convolve(r, kernel, mode="valid"), 1, padded)
    return np.apply_along_axis(lambda c: np.convolve(c, kernel, mode="valid"), 0, rows)


def _ink(grey: np.ndarray) -> np.ndarray:
    """Ink intensity in [0, 1], light on dark, with background lighting and noise removed."""
    # Polarity: the border is mostly background. Ink is whatever lies far from it: if the
    # background sits nearer the light end of the image's range, the ink is dark, so invert.
    border_level = np.median(np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]]))
    darkest, lightest = np.percentile(grey, [0.1, 99.9])  # robust to stray pixels; ink may be under 1 %
    if lightest - border_level < border_level - darkest:
        grey = 1.0 - grey
    # Uneven lighting: estimate the background by an opening wider than any stroke (min then max
    # filter), computed on a small copy and scaled back up, and subtract it.
    small = _resize_longest(grey, 64, Image.Resampling.BOX)
    background = _filter(_filter(small, ImageFilter.MinFilter(13)), ImageFilter.MaxFilter(13))
    background = _box_blur(background, 3)  # smooth the opening's blocky steps
    height, width = grey.shape
    background = _resize(background, (width, height), Image.Resampling.BILINEAR)
    ink = np.clip(grey - background, 0, None)
    ink = _filter(ink, ImageFilter.MedianFilter(3))  # salt-and-pepper noise
    top = ink.max()  # after the median filter, a lone bright pixel cannot set the scale
    if top < MIN_CONTRAST:
        raise ImageError("no ink found: the image is blank or has too little contrast")
    ink = np.clip(ink / top, 0, 1)
    # What is left of paper texture sits well below the strokes: Otsu's threshold separates them.
    # Half of it keeps the strokes' soft edges, which MNIST's anti-aliased digits have too.
    ink[ink < _otsu(ink) / 2] = 0
    return ink


def _otsu(values: np.ndarray, bins: int = 64) -> float:
    counts, edges = np.histogram(values, bins=bins, range=(0, 1))
    centres = (edges[:-1] + edges[1:]) / 2
    weight_below = np.cumsum(counts)
    weight_above = weight_below[-1] - weight_below
    mean_below = np.cumsum(counts * centres) / np.maximum(weight_below, 1)
    total = (counts * centres).sum()
    mean_above = (total - np.cumsum(counts * centres)) / np.maximum(weight_above, 1)
    between = weight_below * weight_above * (mean_below - mean_above) ** 2
    return float(edges[1:][np.argmax(between)])


def _crop_to_ink(ink: np.ndarray) -> np.ndarray:
    """The bounding box of the ink, ignoring specks that hold a negligible share of it."""
    rows, cols = ink.sum(axis=1), ink.sum(axis=0)
    total = rows.sum()
    if total <= 0:
        raise ImageError("no ink found: nothing is left after removing the background")

    def span(mass: np.ndarray) -> tuple[int, int]:
        cumulative = np.cumsum(mass) / total
        return int(np.searchsorted(cumulative, 0.002)), int(np.searchsorted(cumulative, 0.998)) + 1

    top, bottom = span(rows)
    left, right = span(cols)
    return ink[top:bottom, left:right]


def _place(ink: np.ndarray, layout: Layout) -> np.ndarray:
    """Scale the longer side to the layout's box, keep the aspect ratio, and centre in 28×28."""
    digit = np.clip(_resize_longest(ink, layout.box, Image.Resampling.LANCZOS), 0, None)
    canvas = np.zeros((SIDE, SIDE), dtype=np.float64)
    h, w = digit.shape
    if layout.centre_of_mass and digit.sum() > 0:
        ys, xs = np.indices(digit.shape)
        cy, cx = (ys * digit).sum() / digit.sum(), (xs * digit).sum() / digit.sum()
        top, left = round(SIDE / 2 - cy), round(SIDE / 2 - cx)  # MNIST digits have their centre of mass at (14, 14)
    else:
        top, left = (SIDE - h) // 2, (SIDE - w) // 2
    top, left = min(max(top, 0), SIDE - h), min(max(left, 0), SIDE - w)  # never push ink off the canvas
    canvas[top : top + h, left : left + w] = digit
    peak = canvas.max()
    return np.clip(canvas / peak, 0, 1) if peak > 0 else canvas


def preprocess_image(image: Image.Image, layout: Layout = Layout()) -> torch.Tensor:
    """A photo or drawing as the model's input: (1, 28, 28) float32, light ink on black.

    Composites transparency, decides the polarity from the image, removes uneven lighting and
    noise, crops to the ink, scales it into the layout's box and centres it (MNIST: 20 px, by
    centre of mass). Pixels are in [0, 1], as the models are trained on them (ToTensor's scale).
    """
    grey, alpha = _grey_and_alpha(ImageOps.exif_transpose(image))
    if alpha is not None:
        grey = _composite(grey, alpha)
    ink = _ink(_to_working_size(grey))
    canvas = _place(_crop_to_ink(ink), layout)
    return torch.from_numpy(canvas.astype(np.float32)).unsqueeze(0)  # (1, 28, 28) in [0, 1]


def plain_resize(image: Image.Image) -> torch.Tensor:
    """The naive way, for comparison: grey, resized to 28×28, nothing else."""
    grey = np.asarray(image.convert("L").resize((28, 28), Image.Resampling.BILINEAR), dtype=np.float32) / 255
    return torch.from_numpy(grey).unsqueeze(0)


# ---------------------------------------------------------------------------------------------
# Input transforms: applied to 28×28 pixels by the model of a run, in training and prediction
# ---------------------------------------------------------------------------------------------

CENTRE = SIDE / 2  # where deskewing puts the centre of mass, as the classic deskew does (shape / 2)
MAX_SLANT = 1.0  # shear at most 45°: a flat dash has an ill-defined slant, and no digit leans further


def deskew(images: torch.Tensor) -> torch.Tensor:
    """Shear each image so that its ink stands upright, and move its centre of mass to the middle.

    Takes (N, 28, 28), (N, 1, 28, 28) or one image (28, 28) / (1, 28, 28) of light ink on black
    and returns float32 of the same shape. The slant is the ink's cov(row, col) / var(row) from
    its second moments; row r of the output samples the input shifted by slant × (r - centre),
    so a stroke leaning by that slant comes out vertical. Each image is computed on its own:
    the same image alone or in any batch gives the same result. An image without ink is
    returned unchanged.
    """
    shape = images.shape
    x = images.reshape(-1, SIDE, SIDE).to(torch.float32)  # (N, 28, 28)
    mass = x.sum((1, 2))  # (N,)
    has_ink = mass > 0
    safe_mass = torch.where(has_ink, mass, torch.ones_like(mass))
    coords = torch.arange(SIDE, dtype=torch.float32)
    row_mass, col_mass = x.sum(2), x.sum(1)  # (N, 28) each
    cy = (row_mass * coords).sum(1) / safe_mass
    cx = (col_mass * coords).sum(1) / safe_mass
    dy = coords - cy.unsqueeze(1)  # (N, 28): row offsets from the centre of mass
    dx = coords - cx.unsqueeze(1)
    var_row = (row_mass * dy**2).sum(1) / safe_mass
    cov = ((x * dx.unsqueeze(1)).sum(2) * dy).sum(1) / safe_mass
    slant = torch.where(var_row > 1e-6, cov / var_row.clamp_min(1e-6), torch.zeros_like(cov))
    slant = slant.clamp(-MAX_SLANT, MAX_SLANT)
    slant = torch.where(has_ink, slant, torch.zeros_like(slant))
    cy = torch.where(has_ink, cy, torch.full_like(cy, CENTRE))
    cx = torch.where(has_ink, cx, torch.full_like(cx, CENTRE))
    # Output pixel (r, c) samples input (r - CENTRE + cy, c - CENTRE + cx + slant·(r - CENTRE)),
    # written in grid_sample's coordinates, where pixel index i is u = i / 13.5 - 1.
    half = (SIDE - 1) / 2
    theta = torch.zeros(len(x), 2, 3)
    theta[:, 0, 0] = 1
    theta[:, 0, 1] = slant
    theta[:, 0, 2] = (cx - CENTRE + slant * (half - CENTRE)) / half
    theta[:, 1, 1] = 1
    theta[:, 1, 2] = (cy - CENTRE) / half
    grid = F.affine_grid(theta, [len(x), 1, SIDE, SIDE], align_corners=True)
    out = F.grid_sample(x.unsqueeze(1), grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    return out.reshape(shape)


INPUT_TRANSFORMS = {
    "none": None,  # the pixels as they are
    "deskew": deskew,  # slant removed: "linear classifier, deskewing" in the MNIST results table
}


def check_input_transform(name: str) -> str:
    if name not in INPUT_TRANSFORMS:
        raise ValueError(f"input_transform={name!r} is not one of {sorted(INPUT_TRANSFORMS)}")
    return name


def apply_input_transform(name: str, pixels: torch.Tensor) -> torch.Tensor:
    """``pixels`` (…, 28, 28) in [0, 1] as the model of a run with this input transform sees them."""
    transform = INPUT_TRANSFORMS[check_input_transform(name)]
    return pixels if transform is None else transform(pixels)
