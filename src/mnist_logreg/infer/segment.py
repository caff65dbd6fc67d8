"""Splitting the ink of a written number into its digits, left to right.

Connected components (OpenCV) are the start. Three things make them differ from digits:
specks of dust are components too, so those with a negligible share of the ink are dropped;
one digit can be several components (the detached top of a 5, a broken 4, the two strokes of a
hand-drawn 7), so components that overlap in their columns are merged; and two digits that
touch are one component, so a group wider than a digit is tall is cut at its thinnest columns,
unless the classifier is surer of it whole than of all its parts (a wide 0 is as wide as two touching 1s). A number
is one line of writing, so the digits are ordered by their left edge.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

SPECK_SHARE = 0.03  # a component with less than this share of the largest one's ink is dust
MERGE_OVERLAP = 0.5  # pieces whose columns overlap by this much of the narrower one are one digit
FRAGMENT_HEIGHT = 0.5  # a piece under this share of a digit's height belongs to its nearest neighbour
MAX_DIGIT_ASPECT = 1.15  # wider than this times its height: two (or more) touching digits
DIGIT_ASPECT = 0.75  # a typical digit's width over its height, to count the digits in a wide group


@dataclass
class Digit:
    """One digit's ink: its box (x, y, w, h) in the ink's pixels and the mask of its pixels."""

    box: tuple[int, int, int, int]
    mask: np.ndarray  # bool, the ink image's shape


def split_digits(ink: np.ndarray, confidence: Callable[[np.ndarray], float] | None = None) -> list[Digit]:
    """The digits in ``ink`` (light on black, in [0, 1]), left to right. Empty if there is no ink.

    ``confidence(mask)`` is how sure a classifier is of the ink under a mask as one digit; with
    it, a wide group is cut only where its parts are read with more confidence than the whole.
    """
    count, labels, stats, _ = cv2.connectedComponentsWithStats((ink > 0).astype(np.uint8), connectivity=8)
    masses = np.bincount(labels.ravel(), weights=ink.ravel(), minlength=count)[1:]  # ink per component
    if not len(masses):
        return []
    kept = [k + 1 for k in np.flatnonzero(masses >= SPECK_SHARE * masses.max())]
    groups = _merge_fragments(_merge_overlapping([[k] for k in kept], stats), stats)
    height = float(np.median([_box(g, stats)[3] for g in groups]))
    digits = []
    for group in groups:
        mask = np.isin(labels, group)
        digits += _cut_if_wide(mask, _box(group, stats), height, confidence)
    return sorted(digits, key=lambda digit: digit.box[0])


def _box(group: list[int], stats: np.ndarray) -> tuple[int, int, int, int]:
    left = min(stats[k, cv2.CC_STAT_LEFT] for k in group)
    top = min(stats[k, cv2.CC_STAT_TOP] for k in group)
    right = max(stats[k, cv2.CC_STAT_LEFT] + stats[k, cv2.CC_STAT_WIDTH] for k in group)
    bottom = max(stats[k, cv2.CC_STAT_TOP] + stats[k, cv2.CC_STAT_HEIGHT] for k in group)
    return int(left), int(top), int(right - left), int(bottom - top)


def _merge_overlapping(groups: list[list[int]], stats: np.ndarray) -> list[list[int]]:
    """Join groups whose column ranges overlap by MERGE_OVERLAP of the narrower, until none do."""
    merged = True
    while merged:
        merged = False
        for i in range(len(groups)):
            for j in range(i + 1, len(groups)):
                (x1, _, w1, _), (x2, _, w2, _) = _box(groups[i], stats), _box(groups[j], stats)
                overlap = min(x1 + w1, x2 + w2) - max(x1, x2)
                if overlap >= MERGE_OVERLAP * min(w1, w2):
                    groups[i] = groups[i] + groups.pop(j)
                    merged = True
                    break
            if merged:
                break
    return groups


def _merge_fragments(groups: list[list[int]], stats: np.ndarray) -> list[list[int]]:
    """Join each piece much shorter than a digit (a 5's detached top, a broken stroke) to the
    group nearest to it in columns."""
    while len(groups) > 1:
        heights = [_box(g, stats)[3] for g in groups]
        short = [i for i, h in enumerate(heights) if h < FRAGMENT_HEIGHT * max(heights)]
        if not short:
            break
        i = short[0]
        x, _, w, _ = _box(groups[i], stats)

        def gap(j: int, x: int = x, w: int = w) -> float:  # columns between the two boxes; 0 where they overlap
            xj, _, wj, _ = _box(groups[j], stats)
            return max(0, max(x, xj) - min(x + w, xj + wj))

        nearest = min((j for j in range(len(groups)) if j != i), key=gap)
        groups[nearest] = groups[nearest] + groups[i]
        del groups[i]
    return groups


def _cut_if_wide(mask: np.ndarray, box: tuple[int, int, int, int], height: float, confidence=None) -> list[Digit]:
    """One digit, or a group of touching digits cut at the thinnest columns between them."""
    parts = _cut(mask, box, height)
    if len(parts) > 1 and confidence is not None:
        # The probability that every part is read right against that of the whole: a split must
        # pay for itself, so a wide 0 read at 0.99 is not cut into two halves read at 0.9.
        cut = float(np.prod([confidence(part.mask) for part in parts]))
        if cut <= confidence(mask):
            return [Digit(box, mask)]
    return parts


def _cut(mask: np.ndarray, box: tuple[int, int, int, int], height: float) -> list[Digit]:
    x, y, w, h = box
    digit_height = max(h, height)
    if w <= MAX_DIGIT_ASPECT * digit_height:
        return [Digit(box, mask)]
    parts = max(2, round(w / (DIGIT_ASPECT * digit_height)))
    columns = mask[y : y + h, x : x + w].sum(axis=0)
    cuts = []
    for k in range(1, parts):  # look for each cut near where an even split would put it
        centre = k * w / parts
        low, high = int(centre - 0.25 * w / parts), int(centre + 0.25 * w / parts) + 1
        cuts.append(low + int(np.argmin(columns[low:high])))
    digits = []
    for left, right in zip([0, *cuts], [*cuts, w], strict=True):
        part = np.zeros_like(mask)
        part[y : y + h, x + left : x + right] = mask[y : y + h, x + left : x + right]
        rows = np.flatnonzero(part.any(axis=1))
        if len(rows):
            digits.append(Digit((x + left, int(rows[0]), right - left, int(rows[-1] - rows[0] + 1)), part))
    return digits
