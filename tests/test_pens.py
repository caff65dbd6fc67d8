"""data/pens.py: digits redrawn with other pens, deterministic and each changing the digit as its name says."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from mnist_logreg.data.pens import PENS, chosen_digits, pen_copies, redraw, redrawn_ink, training_copies
from mnist_logreg.data.prepared import Making
from mnist_logreg.images.preprocess import stroke_width


def a_digit() -> np.ndarray:
    """A 7 and a bar, drawn as MNIST's pen would: light on black, strokes about 2.5 px wide, in 20 px."""
    canvas = np.zeros((28, 28), np.float32)
    cv2.polylines(canvas, [np.array([[7, 6], [20, 6], [12, 23]], np.int32)], False, 1.0, 2, cv2.LINE_AA)
    cv2.line(canvas, (10, 14), (18, 14), 1.0, 2, cv2.LINE_AA)
    return np.round(canvas * 255).astype(np.uint8)


def sharpness(ink: np.ndarray) -> float:
    """The mean absolute Laplacian over the ink: a blurred stroke's edges are soft and score low."""
    return float(np.abs(cv2.Laplacian(ink.astype(np.float32), cv2.CV_32F)).sum() / max(float(ink.sum()), 1e-9))


def drawn(pen: str, value: float, count: int = 4) -> list[np.ndarray]:
    """The digit redrawn with ``pen`` at ``value``, ``count`` times, as ink at 112 px (before placing)."""
    rng = np.random.default_rng(0)
    return [redrawn_ink(a_digit(), pen, value, rng) for _ in range(count)]


def test_copies_are_the_same_for_a_seed_and_differ_between_seeds():
    digits = np.stack([a_digit()] * 30)
    shares = {name: 1.0 for name in PENS}
    first, kinds = pen_copies(digits, shares, 1)
    again, kinds_again = pen_copies(digits, shares, 1)
    other, _ = pen_copies(digits, shares, 2)
    assert first.shape == digits.shape and first.dtype == np.uint8
    assert np.array_equal(first, again) and np.array_equal(kinds, kinds_again)
    assert not np.array_equal(first, other)
    assert set(kinds.tolist()) == set(range(len(PENS)))  # every pen drawn, in a seeded order


def test_copies_are_the_same_made_here_or_spread_over_two_processes():
    digits = np.stack([np.roll(a_digit(), shift, axis=1) for shift in range(-3, 4)] * 158)  # 1,106: two chunks
    shares = {name: 1.0 for name in PENS}
    told: list[int] = []
    here, kinds = pen_copies(digits, shares, 5)
    spread, spread_kinds = pen_copies(digits, shares, 5, done=told.append, workers=2)
    assert np.array_equal(here, spread) and np.array_equal(kinds, spread_kinds)
    assert told == [1000, 106]  # each chunk told of once, in order


def test_a_seeded_quarter_of_the_training_digits_is_redrawn():
    chosen = chosen_digits(1000, 3)
    assert len(chosen) == 250 and len(set(chosen.tolist())) == 250 and (np.diff(chosen) > 0).all()
    assert np.array_equal(chosen, chosen_digits(1000, 3)) and not np.array_equal(chosen, chosen_digits(1000, 4))


def test_a_share_of_zero_draws_no_copy_of_that_pen():
    _, kinds = pen_copies(np.stack([a_digit()] * 40), {"thick": 1.0, "fine": 0.0, "blurred": 3.0}, 0)
    assert set(kinds.tolist()) == {0, 2} and (kinds == 2).sum() > (kinds == 0).sum()


def test_thick_and_fine_pens_widen_and_narrow_the_stroke_in_order_of_their_width():
    plain = stroke_width(drawn("warped", 0.0, 1)[0])  # the enlarged digit, its pen unchanged
    thick = [np.mean([stroke_width(ink) for ink in drawn("thick", width)]) for width in PENS["thick"].train]
    fine = [np.mean([stroke_width(ink) for ink in drawn("fine", width)]) for width in PENS["fine"].train]
    assert thick == sorted(thick) and thick[0] > plain * 1.3, (plain, thick)
    assert fine == sorted(fine) and fine[-1] < plain * 0.7, (plain, fine)


def test_a_blurred_pen_softens_the_edges_and_a_low_resolution_scan_loses_detail():
    plain = drawn("warped", 0.0, 1)[0]
    blurred = [sharpness(drawn("blurred", sigma, 1)[0]) for sigma in PENS["blurred"].train]
    assert blurred == sorted(blurred, reverse=True) and blurred[0] < sharpness(plain) * 0.7, blurred

    # A digit scanned 7 px tall holds 7 rows of detail: enlarged back, its rows come in blocks or
    # ramps, and far fewer rows differ from the one above than in the digit itself.
    def changing_rows(ink):
        return int((np.abs(np.diff(ink, axis=0)).max(axis=1) > 0.05).sum())

    coarse = [np.mean([changing_rows(ink) for ink in drawn("low-res", side, 8)]) for side in PENS["low-res"].train]
    assert coarse[0] < changing_rows(plain) * 0.7 and coarse == sorted(coarse), (coarse, changing_rows(plain))


def test_faint_ink_is_pale_and_read_back_as_the_same_digit_and_warping_moves_it():
    plain = drawn("warped", 0.0, 1)[0]
    for contrast in PENS["faint"].train:
        [faint] = drawn("faint", contrast, 1)
        assert faint.max() == pytest.approx(contrast, abs=0.06)
    placed = [redraw(a_digit(), "faint", PENS["faint"].train[0], np.random.default_rng(n)) for n in range(3)]
    as_it_is = redraw(a_digit(), "warped", 0.0, np.random.default_rng(0))
    assert all(np.corrcoef(as_it_is.ravel(), f.ravel())[0, 1] > 0.9 for f in placed)  # the photo path finds it
    warped = drawn("warped", PENS["warped"].train[-1], 3)
    assert all(0.3 < np.corrcoef(plain.ravel(), w.ravel())[0, 1] < 0.95 for w in warped)


@pytest.mark.parametrize("pen", sorted(PENS))
def test_the_test_parameters_are_never_the_trainings(pen):
    assert not set(PENS[pen].train) & set(PENS[pen].test)


def test_copies_are_kept_under_a_key_and_made_again_when_it_changes(tmp_path):
    digits, labels = np.stack([a_digit()] * 12), np.arange(12) % 10
    said = []
    made, made_labels, counts = training_copies(
        digits, labels, {"split": "a"}, 3, tmp_path, making=Making(log=said.append)
    )
    assert said[-1].startswith("redrawing 3 digits")  # a quarter of them (PEN_COPIES_PER_DIGIT)
    assert np.array_equal(made_labels, labels[chosen_digits(12, 3)]) and sum(counts.values()) == 3
    read, _, read_counts = training_copies(digits, labels, {"split": "a"}, 3, tmp_path, making=Making(log=said.append))
    assert "from" in said[-1] and np.array_equal(made, read) and read_counts == counts
    training_copies(digits, labels, {"split": "a"}, 4, tmp_path, making=Making(log=said.append))  # another seed
    assert said[-1].startswith("redrawing")
    assert len(list((tmp_path / "pens").iterdir())) == 2
    training_copies(digits, labels, {"split": "a"}, 5, tmp_path, making=Making(log=said.append, cache=False))
    assert len(list((tmp_path / "pens").iterdir())) == 2  # --no-cache keeps nothing


def test_the_pens_scores_at_another_threshold_accept_what_that_threshold_would():
    from tests.pens import at_threshold

    # three images: a sure 0, an unsure 1 (wrongly a 2 at heart), and one whose "not a digit" is likeliest
    probabilities = np.zeros((3, 11))
    probabilities[0, 0], probabilities[0, 10] = 0.9, 0.1
    probabilities[1, [1, 2]] = 0.45, 0.55
    probabilities[2, [3, 10]] = 0.4, 0.6
    labels = np.array([0, 1, 3])
    assert at_threshold(probabilities, labels, 0.8) == {"accepted": 1 / 3, "right": 1.0}
    # at 0, every image a digit is likeliest for: the third never is, whatever the threshold
    assert at_threshold(probabilities, labels, 0.0) == {"accepted": 2 / 3, "right": 0.5}
    assert at_threshold(probabilities, labels, 0.95) == {"accepted": 0.0, "right": 0.0}
