"""Splitting a written number into digits, on constructed ink."""

from __future__ import annotations

import cv2
import numpy as np

from mnist_logreg.infer.segment import split_digits


def canvas(width: int = 300, height: int = 120) -> np.ndarray:
    return np.zeros((height, width), dtype=np.float32)


def one(ink: np.ndarray, x: int, top: int = 20, height: int = 80) -> None:
    cv2.line(ink, (x, top), (x, top + height), 1.0, 6)


def zero(ink: np.ndarray, centre_x: int, half_width: int = 30, top: int = 20, height: int = 80) -> None:
    cv2.ellipse(ink, (centre_x, top + height // 2), (half_width, height // 2), 0, 0, 360, 1.0, 6)


def test_two_digits_one_pixel_apart_are_two():
    ink = canvas()
    zero(ink, 80)  # spans columns 47..113
    one(ink, 117)  # its stroke starts at 114: one empty column between them? make sure of it
    ink[:, 114] = 0
    digits = split_digits(ink)
    assert len(digits) == 2
    assert digits[0].box[0] < digits[1].box[0]


def test_a_five_with_its_top_stroke_detached_is_one_digit():
    ink = canvas()
    cv2.line(ink, (100, 20), (150, 20), 1.0, 6)  # the top bar, not touching the rest
    cv2.line(ink, (100, 32), (100, 55), 1.0, 6)  # the stem
    cv2.ellipse(ink, (115, 75), (28, 22), 0, -120, 150, 1.0, 6)  # the belly
    assert cv2.connectedComponents((ink > 0).astype(np.uint8))[0] - 1 == 2  # really two pieces
    digits = split_digits(ink)
    assert len(digits) == 1
    x, y, w, _h = digits[0].box
    assert y <= 18 and x <= 98 and x + w >= 150


def test_a_speck_of_dust_beside_a_digit_is_dropped():
    ink = canvas()
    zero(ink, 120)
    ink[60:63, 200:203] = 1.0  # dust
    digits = split_digits(ink)
    assert len(digits) == 1 and digits[0].box[0] + digits[0].box[2] < 200


def touching_zeros(ink: np.ndarray) -> None:
    """Two 0s written without lifting the pen: a stroke joins them at mid-height."""
    zero(ink, 100)  # columns 67..133
    zero(ink, 178)  # columns 145..211
    cv2.line(ink, (133, 60), (145, 60), 1.0, 6)


def test_a_touching_pair_is_cut_between_the_digits():
    ink = canvas(400)
    touching_zeros(ink)
    assert cv2.connectedComponents((ink > 0).astype(np.uint8))[0] - 1 == 1
    digits = split_digits(ink)
    assert len(digits) == 2
    cut = digits[0].box[0] + digits[0].box[2]
    assert 133 <= cut <= 146  # in the joining stroke, between the rings
    assert not (digits[0].mask & digits[1].mask).any()


def test_a_one_next_to_a_wide_zero_is_two_digits_and_the_zero_stays_whole():
    ink = canvas(400)
    one(ink, 60)
    zero(ink, 160, half_width=45)  # wider than usual, still one digit
    digits = split_digits(ink)
    assert len(digits) == 2
    assert digits[0].box[2] < 20 and digits[1].box[2] > 80


def test_a_wide_group_stays_whole_when_the_classifier_is_surer_of_it_whole():
    ink = canvas(400)
    touching_zeros(ink)
    whole = int((ink > 0).sum())
    assert len(split_digits(ink, confidence=lambda mask: 0.99 if mask.sum() == whole else 0.5)) == 1
    assert len(split_digits(ink, confidence=lambda mask: 0.3 if mask.sum() == whole else 0.9)) == 2


def test_no_ink_no_digits():
    assert split_digits(canvas()) == []
