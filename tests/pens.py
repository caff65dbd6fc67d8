"""The pens test set: digits nobody here drew, with pens MNIST never used, read through the whole photo path.

- MNIST *test* digits (never a training one) redrawn with each pen of ``mnist_logreg.data.pens`` at
  the pen's ``test`` parameters, which the training never draws from, written on paper as PNG or
  JPEG files (every other one), as they are drawn, not placed: ``predict_image_file`` reads them
  back through the whole photo path;
- digits 0–9 in the handwriting fonts ``make fonts`` unpacks (tests/letters.py), at three sizes
  and three slants, as photos of a note.

No image of these sets reaches training or the choice of the pens' shares.
"""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image, ImageDraw

from mnist_logreg.data.pens import PENS, redrawn_ink
from tests.letters import fonts, on_paper
from tests.photos import image_bytes

PER_PEN = 200  # test digits redrawn with each pen
SEED = 2003  # not a training seed: the test digits are drawn with their own stream


def as_file(ink: np.ndarray, rng: np.random.Generator, jpeg: bool) -> bytes:
    """Ink (H, W) in [0, 1], light on black, as a photo's file would hold it: dark on paper,
    scaled to 84–140 px in a margin of paper, saved as PNG or JPEG (quality 60–90)."""
    side = int(rng.integers(84, 141))
    ink = np.clip(cv2.resize(ink.astype(np.float32), (side, side), interpolation=cv2.INTER_AREA), 0, 1)
    page = np.full((side + 60, side + 60), 0.9, np.float32)
    page[30 : 30 + side, 30 : 30 + side] -= 0.75 * ink
    image = Image.fromarray(np.round(np.clip(page, 0, 1) * 255).astype(np.uint8), mode="L")
    return image_bytes(image, "JPEG", quality=int(rng.integers(60, 91))) if jpeg else image_bytes(image)


def pens_test_set(
    images: np.ndarray, labels: np.ndarray, per_pen: int = PER_PEN
) -> dict[str, list[tuple[int, float, bytes]]]:
    """{pen: [(label, the pen's parameter, file bytes), ...]}: ``per_pen`` of MNIST's test digits
    (``images`` (N, 28, 28) uint8, ``labels``) per pen, redrawn at the pen's test parameters in turn,
    as PNG and JPEG files."""
    rng = np.random.default_rng(SEED)
    sets = {}
    for pen in PENS:
        chosen = rng.choice(len(labels), per_pen, replace=False)
        values = [PENS[pen].test[n % len(PENS[pen].test)] for n in range(per_pen)]
        inks = [redrawn_ink(images[i], pen, value, rng) for i, value in zip(chosen, values, strict=True)]
        sets[pen] = [
            (int(labels[i]), value, as_file(ink, rng, jpeg=n % 2 == 1))
            for n, (i, value, ink) in enumerate(zip(chosen, values, inks, strict=True))
        ]
    return sets


def font_digits(sizes=(60, 90, 120), slants=(-8, 0, 8)) -> list[tuple[str, int, Image.Image]]:
    """(font name, digit, photo) for the digits 0–9 in every handwriting font, at each size and slant."""
    return [
        (font.stem, digit, on_paper(str(digit), font, size).rotate(slant, expand=True, fillcolor=235))
        for font in fonts()
        for digit in range(10)
        for size in sizes
        for slant in slants
    ]


def score(answers: list[tuple[int, dict]], thresholds: dict[str, float] | None = None) -> dict:
    """Of (label, predict's answer) pairs: the shares ``accepted``, ``unsure`` and ``rejected``, the
    accuracy ``right`` among the accepted, and ``top_right``, the likeliest class right, accepted or not.
    With ``thresholds`` ({name: threshold}), ``at_threshold`` has what each would have accepted (``at_thresholds``)."""
    taken = [(label, answer) for label, answer in answers if answer["accepted"]]
    scored = {
        "count": len(answers),
        "accepted": float(np.mean([answer["accepted"] for _, answer in answers])),
        "unsure": float(np.mean([answer["state"] == "unsure" for _, answer in answers])),
        "rejected": float(np.mean([answer["state"] == "rejected" for _, answer in answers])),
        "right": float(np.mean([answer["label"] == label for label, answer in taken])) if taken else 0.0,
        "top_right": float(np.mean([answer["top_k"][0]["label"] == label for label, answer in answers])),
    }
    if thresholds:
        scored["at_threshold"] = at_thresholds(answers, thresholds)
    return scored


def at_thresholds(answers: list[tuple[int, dict]], thresholds: dict[str, float]) -> dict[str, dict]:
    """{name: ``at_threshold``} of (label, predict's answer) pairs at each of ``thresholds``."""
    probabilities = np.array([answer["probabilities"] for _, answer in answers])
    truth = np.array([label for label, _ in answers])
    return {name: at_threshold(probabilities, truth, value) for name, value in thresholds.items()}


def at_threshold(probabilities: np.ndarray, labels: np.ndarray, threshold: float) -> dict:
    """The shares ``accepted`` and ``right`` among the accepted of images with these calibrated
    ``probabilities`` (N, outputs), "not a digit" last, had the run's threshold been ``threshold``.
    At 0, every image whose likeliest output is a digit is accepted: no threshold accepts more."""
    from mnist_logreg.model.calibration import accepted

    digits = probabilities.shape[1] - 1
    taken = accepted(probabilities, digits, threshold)
    right = probabilities[:, :digits].argmax(1) == labels
    return {"accepted": float(taken.mean()), "right": float(right[taken].mean()) if taken.any() else 0.0}


def score_pens(
    weights, info, images: np.ndarray, labels: np.ndarray, per_pen: int = PER_PEN, thresholds: dict | None = None
) -> dict[str, dict]:
    """``score`` of each pen's test set (at ``thresholds`` too), read through ``predict_image_file``,
    and under ``by_value`` the ``score`` of each of the pen's parameters (how strong a blur, how thick
    a marker)."""
    from mnist_logreg.infer.classify import predict_image_file

    scores = {}
    for pen, items in pens_test_set(images, labels, per_pen).items():
        answers = [(label, value, predict_image_file(data, weights, info)) for label, value, data in items]
        by_value = {
            str(value): score([(label, answer) for label, of, answer in answers if of == value])
            for value in PENS[pen].test
        }
        scores[pen] = score([(label, answer) for label, _, answer in answers], thresholds) | {"by_value": by_value}
    return scores


def score_font_digits(weights, info, thresholds: dict | None = None) -> dict:
    """``score`` of the handwriting-font digits (at ``thresholds`` too), read through ``predict_image_file``."""
    from mnist_logreg.infer.classify import predict_image_file

    answers = [(digit, predict_image_file(image_bytes(photo), weights, info)) for _, digit, photo in font_digits()]
    return score(answers, thresholds)


def score_digit_files(weights, info, images: np.ndarray, labels: np.ndarray, count: int = 500) -> dict:
    """``score`` of the first ``count`` MNIST test digits saved as 28×28 PNG files, as the dataset
    holds them (light on black), and read back through the whole photo path."""
    from mnist_logreg.infer.classify import predict_image_file

    files = [image_bytes(Image.fromarray(image, mode="L")) for image in images[:count]]
    return score(
        [
            (int(label), predict_image_file(data, weights, info))
            for data, label in zip(files, labels[:count], strict=True)
        ]
    )


STROKE_WIDTHS = (2, 4, 6, 8, 10, 14, 20, 30)  # pen widths of a vertical line on a 300 px page


def vertical_stroke(width: int) -> Image.Image:
    """A plainly drawn 1: a vertical line 220 px long, ``width`` px wide, on a white 300 × 300 page."""
    page = Image.new("L", (300, 300), 255)
    ImageDraw.Draw(page).line([(150, 40), (150, 260)], fill=0, width=width)
    return page


def score_strokes(weights, info) -> dict[int, dict]:
    """predict's answer to a vertical stroke at each of STROKE_WIDTHS."""
    from mnist_logreg.infer.classify import predict_image_file

    return {width: predict_image_file(image_bytes(vertical_stroke(width)), weights, info) for width in STROKE_WIDTHS}
