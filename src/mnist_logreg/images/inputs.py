"""What the model sees of a 28×28 image: its input transform, then its feature map. numpy and torch.

A run's model is ``softmax(W · features(transform(image)) + b)``: one linear layer on fixed,
non-learned inputs. Both steps are here, each written once for numpy arrays (``predict`` and
``serve``, which never import torch) and once in torch operations (training on any device, and
the ONNX graph, which holds them too); the tests hold the two to the same numbers.

- Input transforms (model.json's ``input_transform``): ``"none"``, or ``"deskew"``, which
  shears each digit upright about its centre of mass and moves that to the middle.
- Feature maps (model.json's ``features``): ``"pixels"``, the lesson's 784 inputs, or
  ``"pixel-pairs"``: each pixel, and for each pixel and each of its neighbours at distance 1, 2
  and 3 to the right, down, down-right and down-left, ``sqrt(x_p · x_q)``: "ink here and ink
  there", which a single pixel's weight cannot say. 13 channels of 784: 10,192 inputs.

Nothing here imports OpenCV or torch at import time.
"""

from __future__ import annotations

import numpy as np

from ..config import FEATURES, INPUT_TRANSFORMS
from ..errors import SettingError

SIDE = 28  # every model input is SIDE × SIDE pixels
INPUT_SIZE = SIDE * SIDE  # 784 pixels


def unit_pixels(values) -> np.ndarray:
    """8-bit grey levels (an array of any shape, or a Pillow image) as float32 in [0, 1]: what
    ToTensor computes, a division by 255 (loaders.to_float_pixels is its torch twin)."""
    return np.asarray(values, dtype=np.float32) / 255


def byte_pixels(values) -> np.ndarray:
    """Grey levels in [0, 1] (any shape) as 8-bit ones, each rounded to the nearest level; values
    outside [0, 1] are clipped to it first, as an 8-bit file must hold them."""
    return np.round(np.clip(values, 0, 1) * 255).astype(np.uint8)


CENTRE = SIDE / 2  # where deskewing puts the centre of mass, as the classic deskew does (shape / 2)
MAX_SLANT = 1.0  # shear at most 45°: a flat dash has an ill-defined slant, and no digit leans further

# Neighbour offsets (rows down, columns right) of the pair channels, in channel order: right,
# down, down-right and down-left, each at distance 1, 2 and 3.
DIRECTIONS = ((0, 1), (1, 0), (1, 1), (1, -1))
DISTANCES = (1, 2, 3)
PAIR_OFFSETS = tuple((dr * d, dc * d) for dr, dc in DIRECTIONS for d in DISTANCES)
CHANNELS = {"pixels": 1, "pixel-pairs": 1 + len(PAIR_OFFSETS)}
REACH = max(max(abs(dr), abs(dc)) for dr, dc in PAIR_OFFSETS)  # the farthest neighbour, in pixels


def _is_torch(values) -> bool:
    return not isinstance(values, np.ndarray) and type(values).__module__.startswith("torch")


# ---------------------------------------------------------------------------------------------
# Input transforms
# ---------------------------------------------------------------------------------------------


def check_input_transform(name: str) -> str:
    if name not in INPUT_TRANSFORMS:
        raise SettingError(f"input_transform={name!r} is not one of {sorted(INPUT_TRANSFORMS)}")
    return name


def apply_input_transform(name: str, pixels):
    """``pixels`` (…, 28, 28) in [0, 1], numpy or torch, as the model of a run with this input transform sees them."""
    if check_input_transform(name) == "none":
        return pixels
    return deskew(pixels)


def deskew(images):
    """Shear each image so that its ink stands upright, and move its centre of mass to the middle.

    Takes light ink on black as (N, 28, 28), (N, 1, 28, 28) or one image (28, 28) / (1, 28, 28),
    a numpy array or a torch tensor, and returns float32 of the same shape and kind. The slant
    is the ink's cov(row, col) / var(row) from its second moments; row v of the output samples
    the input at row v + cy - 14 and column u + slant·(v - 14) + cx - 14, so a stroke leaning by
    that slant comes out vertical and the centre of mass (cy, cx) lands on (14, 14). Sampling is
    bilinear, with zeros outside the image. The row sampled is offset by the same amount on
    every row and the column by the same amount along a row, so the bilinear sample is two
    one-dimensional blends: rows first, then columns. Each image is resampled on its own, so the
    same image alone or in any batch gives the same result. An image without ink is unchanged.
    """
    if _is_torch(images):
        return _deskew_torch(images)
    shape = images.shape
    x = np.asarray(images).reshape(-1, SIDE, SIDE)  # (N, 28, 28)
    out = np.empty(x.shape, dtype=np.float32)
    for start in range(0, len(x), DESKEW_CHUNK):
        part = x[start : start + DESKEW_CHUNK].astype(np.float64)
        row_shift, column_shift = _deskew_shifts(part, np)  # (n,), (n, 28)
        out[start : start + len(part)] = _shift_columns(_shift_rows(part, row_shift), column_shift)
    return out.reshape(shape)


# Images deskewed at once in numpy: the sampling's float64 temporaries take about 60 KB an image
# (10,000 test images at once took 600 MB more at the peak of a report).
DESKEW_CHUNK = 1000


def _deskew_shifts(x, xp):
    """The offsets deskewing samples at: each image's row shift (N,) and each output row's column shift (N, 28).

    ``xp`` is numpy or torch: the same arithmetic for both, in float64.
    """
    coords = xp.arange(SIDE, dtype=x.dtype)
    mass = x.sum(axis=(1, 2)) if xp is np else x.sum(dim=(1, 2))  # (N,)
    has_ink = mass > 0
    safe_mass = xp.where(has_ink, mass, xp.ones_like(mass))
    row_mass, col_mass = x.sum(axis=2) if xp is np else x.sum(dim=2), x.sum(axis=1) if xp is np else x.sum(dim=1)
    cy = xp.where(has_ink, (row_mass * coords).sum(-1) / safe_mass, xp.full_like(mass, CENTRE))
    cx = xp.where(has_ink, (col_mass * coords).sum(-1) / safe_mass, xp.full_like(mass, CENTRE))
    dy = coords[None, :] - cy[:, None]  # (N, 28): row offsets from the centre of mass
    dx = coords[None, :] - cx[:, None]
    var_row = (row_mass * dy**2).sum(-1) / safe_mass
    cov = ((x * dx[:, None, :]).sum(-1) * dy).sum(-1) / safe_mass
    usable = has_ink & (var_row > 1e-6)
    slant = xp.where(usable, cov / xp.where(usable, var_row, xp.ones_like(var_row)), xp.zeros_like(var_row))
    slant = slant.clip(-MAX_SLANT, MAX_SLANT)
    row_shift = cy - CENTRE  # (N,)
    column_shift = slant[:, None] * (coords[None, :] - CENTRE) + (cx - CENTRE)[:, None]  # (N, 28)
    return row_shift, column_shift


def _shift_rows(x: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """out[n, v] = x[n, v + shift[n]], blended between the two nearest rows; zero rows outside."""
    whole = np.floor(shift)
    fraction = (shift - whole)[:, None, None]
    padded = _pad(x, 1)  # rows -SIDE .. 2·SIDE: every shift in (-SIDE, SIDE) lands inside
    first = whole.astype(np.int64)[:, None] + np.arange(SIDE)[None, :] + SIDE  # (N, 28): upper rows, padded
    images = np.arange(len(x))[:, None]  # whole rows are gathered: one index per row, not per pixel
    upper, lower = (padded[images, _inside(index, padded.shape[1])] for index in (first, first + 1))
    return (1 - fraction) * upper + fraction * lower


def _shift_columns(x: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """out[n, v, u] = x[n, v, u + shift[n, v]], blended between the two nearest columns; zero outside."""
    whole = np.floor(shift)  # (N, 28)
    fraction = (shift - whole)[:, :, None]
    padded = _pad(x, 2)
    width = padded.shape[2]
    first = whole.astype(np.int64)[:, :, None] + np.arange(SIDE)[None, None, :] + SIDE  # (N, 28, 28)
    # Gathered from the flat array, each row's start added: a third less time than take_along_axis.
    row_starts = (np.arange(len(x) * SIDE) * width).reshape(len(x), SIDE, 1)
    flat = padded.reshape(-1)
    left, right = (flat[row_starts + _inside(index, width)] for index in (first, first + 1))
    return (1 - fraction) * left + fraction * right


def _pad(x: np.ndarray, axis: int) -> np.ndarray:
    """``x`` with SIDE zeros before and SIDE + 1 after, along ``axis``: room for any shift in (-SIDE, SIDE)."""
    widths = [(0, 0)] * x.ndim
    widths[axis] = (SIDE, SIDE + 1)
    return np.pad(x, widths)


def _inside(index: np.ndarray, size: int) -> np.ndarray:
    """``index`` kept within ``size`` entries (shifts are bounded: the clip only guards the edges)."""
    return index.clip(0, size - 1)


def _deskew_torch(images):
    """``deskew`` in torch operations, on the tensor's device: the moments in float64, as numpy's,
    then one ``grid_sample`` (bilinear, zeros outside), which is the same sample in one kernel and
    exports to ONNX as GridSample."""
    import torch
    import torch.nn.functional as F

    shape = images.shape
    x = images.reshape(-1, 1, SIDE, SIDE)
    x = x if x.dtype == torch.float64 else x.to(torch.float32)  # float64 stays, as in numpy
    row_shift, column_shift = _deskew_shifts(x[:, 0].to(torch.float64), torch)
    coords = torch.arange(SIDE, dtype=torch.float64, device=x.device)
    scale = 2 / (SIDE - 1)  # align_corners=True: -1 and 1 are the centres of the first and last pixels
    # The x and the y each output pixel (v, u) samples at, computed in float64 and rounded to the
    # images' type before they are stacked into the grid (N, 28, 28, 2): y depends on the row alone,
    # and is computed once a row (stacking float64 copies of it took three quarters of the deskew).
    columns = ((coords[None, None, :] + column_shift[:, :, None]) * scale - 1).to(x.dtype)  # (N, 28, 28)
    rows = ((coords[None, :] + row_shift[:, None]) * scale - 1).to(x.dtype)[:, :, None].expand_as(columns)
    grid = torch.stack([columns, rows], dim=-1)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    return out.reshape(shape)


# ---------------------------------------------------------------------------------------------
# Feature maps
# ---------------------------------------------------------------------------------------------


def check_features(name: str) -> str:
    if name not in FEATURES:
        raise SettingError(f"features={name!r} is not one of {sorted(FEATURES)}")
    return name


def feature_count(name: str) -> int:
    """The number of inputs the linear layer takes with this feature map: 784, or 10,192 for pixel pairs."""
    return CHANNELS[check_features(name)] * INPUT_SIZE


def feature_map(name: str, pixels, out=None):
    """Images (N, 28, 28), (N, 1, 28, 28) or (N, 784) in [0, 1], numpy or torch, as the linear
    layer's inputs (N, feature_count(name)), float32 (float64 input stays float64).

    Pixel pairs are products of square roots, sqrt(x_p)·sqrt(x_q), one multiply per pair: channel
    k holds, at pixel p, the pair of p and its neighbour p + PAIR_OFFSETS[k - 1], or zero where
    that neighbour is off the image (the zeros of the padding). ``out``, a buffer of the result's
    shape and type, is written into instead of a new array: training reuses one per batch size.
    """
    n = pixels.shape[0]
    if check_features(name) == "pixels":
        return pixels.reshape(n, INPUT_SIZE)
    if _is_torch(pixels):
        import torch
        import torch.nn.functional as F

        x = pixels.reshape(n, SIDE, SIDE)
        x = x if x.dtype == torch.float64 else x.to(torch.float32)  # float64 stays, as in numpy
        root = _torch_sqrt(x)
        padded = F.pad(root, (REACH, REACH, 0, REACH))  # zeros below, left and right: off-image neighbours
        if out is None or out.shape != (n, feature_count(name)) or out.dtype != x.dtype:
            # Without a buffer, no writes in place: the ONNX exporter traces this path.
            pairs = [root * padded[:, dr : dr + SIDE, REACH + dc : REACH + dc + SIDE] for dr, dc in PAIR_OFFSETS]
            return torch.stack([x, *pairs], 1).reshape(n, feature_count(name))
        multiply = torch.mul
    else:
        x = np.asarray(pixels)
        x = x.astype(x.dtype if x.dtype == np.float64 else np.float32).reshape(n, SIDE, SIDE)  # float64 stays
        if out is None or out.shape != (n, feature_count(name)) or out.dtype != x.dtype:
            out = np.empty((n, feature_count(name)), dtype=x.dtype)
        root = np.sqrt(x)
        padded = np.pad(root, ((0, 0), (0, REACH), (REACH, REACH)))
        multiply = np.multiply
    channels = out.reshape(n, CHANNELS[name], SIDE, SIDE)
    channels[:, 0] = x
    # A direction's neighbours at distance 1, 2 and 3 lie one step apart in the padded images'
    # memory: one strided view holds all three, and one multiply fills their three channels.
    rows, width = padded.shape[1:]
    for k, (dr, dc) in enumerate(DIRECTIONS):
        step = dr * width + dc
        shape, strides = (n, len(DISTANCES), SIDE, SIDE), (rows * width, step, width, 1)
        neighbours = _strided(padded, shape, strides, offset=REACH + step)
        first = 1 + k * len(DISTANCES)
        multiply(root[:, None], neighbours, out=channels[:, first : first + len(DISTANCES)])
    return out


def tracing() -> bool:
    """Whether torch is tracing the computation (ONNX export): only torch operations may run."""
    import torch

    return torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()


def _torch_sqrt(x):
    """The square roots of a torch tensor. On the CPU, numpy's: correctly rounded, the numpy feature
    map's to the bit, and as fast on images mostly zero, as digits are, as on any other; torch's CPU
    kernel is neither here (one root in about 750 an ulp off, and ten times slower on zeros). Traced,
    with gradients, or on a GPU: torch's."""
    if x.device.type != "cpu" or x.requires_grad or tracing():
        return x.sqrt()
    import torch

    return torch.from_numpy(np.sqrt(x.numpy()))


def _strided(padded, shape: tuple, strides: tuple, offset: int):
    """A view of contiguous ``padded`` (numpy or torch) with ``strides`` in elements, from element ``offset``."""
    if _is_torch(padded):
        return padded.as_strided(shape, strides, storage_offset=padded.storage_offset() + offset)
    images, rows, width = padded.shape
    start = padded.reshape(images, rows * width)[:, offset:]
    return np.lib.stride_tricks.as_strided(
        start, shape, [stride * padded.itemsize for stride in strides], writeable=False
    )


def _overlap(dr: int, dc: int) -> tuple[tuple[slice, slice], tuple[slice, slice]]:
    """(rows, columns) of the pixels p whose neighbour p + (dr, dc) is on the image, and of those neighbours."""

    def span(d: int) -> tuple[slice, slice]:
        return (slice(0, SIDE - d), slice(d, SIDE)) if d >= 0 else (slice(-d, SIDE), slice(0, SIDE + d))

    (rows, rows_there), (cols, cols_there) = span(dr), span(dc)
    return (rows, cols), (rows_there, cols_there)


def fold_to_pixels(name: str, values: np.ndarray) -> np.ndarray:
    """Per-feature values (…, feature_count(name)) as per-pixel values (…, 784) with the same sum.

    A pixel's own value stays on it; a pair's is shared, half onto each of its two pixels. For
    weights, that is the weight each pixel carries; for contributions w·x, an evidence map whose
    sum, with the bias, is still the logit exactly.
    """
    values = np.asarray(values, dtype=np.float64)
    lead = values.shape[:-1]
    channels = values.reshape(*lead, CHANNELS[check_features(name)], SIDE, SIDE)
    out = channels[..., 0, :, :].copy()
    for channel, (dr, dc) in enumerate(PAIR_OFFSETS[: CHANNELS[name] - 1], start=1):
        here, there = _overlap(dr, dc)
        half = channels[..., channel, here[0], here[1]] / 2
        out[..., here[0], here[1]] += half
        out[..., there[0], there[1]] += half
    return out.reshape(*lead, INPUT_SIZE)
