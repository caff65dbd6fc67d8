"""Reading the whole number written in an image: its ink split into digits, each one classified.

The ink is found with the photo cleaning of ``images/preprocess.py``, cut into digits left to right by
``segment.split_digits``, and each digit is placed the MNIST way and predicted (``infer/classify.py``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from ..config import TOP_K
from ..errors import UserError
from ..images.preprocess import WORKING_SIDE, NoInk, ink_of, open_image, place_ink
from ..model.linear import as_weights
from .classify import DIGITS, layout_and_classes, predict_pixels
from .segment import split_digits


class NotADigitModel(UserError, ValueError):
    """Reading numbers needs a model whose classes are digits."""


def check_reads_digits(info) -> None:
    """Refuse, with the reason, a run whose classes are not all single digits (a Fashion-MNIST run,
    a folder of letters); a folder of some digits only reads numbers made of those."""
    if info is not None and not all(name in DIGITS for name in info.classes):
        raise NotADigitModel(
            f"reading numbers needs a model whose classes are digits, and this is a {info.dataset} run "
            f"(classes {', '.join(info.classes[:3])}{', ...' if len(info.classes) > 3 else ''})"
        )


def read_image_file(path: str | Path | bytes, model, info=None, top_k: int = TOP_K, with_pixels: bool = False) -> dict:
    """Read the number written in an image: ``{"text", "probability", "digits"}``.

    The ink is found with ``predict``'s cleaning, split into digits (``segment.split_digits``),
    and each digit is placed the MNIST way and classified. A part the run rejects (a letter, a
    smudge) stays in ``digits`` with ``accepted: False`` and is left out of ``text``.
    A part read "unsure" (a digit, but which of two) stays in ``text`` as "?": "12?4".
    ``probability`` is the product of the accepted digits' probabilities (0 if none is); each
    digit's ``box`` is [x, y, w, h] in the original image's pixels.
    ``with_pixels`` keeps each digit's ``pixels``, as the model saw them (to explain it).
    An image with no ink, or none that makes a part, reads as no digits, and ``reason`` says so.
    Raises ImageError for a file that is not a readable image.
    """
    check_reads_digits(info)
    layout, classes = layout_and_classes(info)
    model = as_weights(model)  # once, not for every digit and every cut tried
    image = open_image(path, reduce_to=WORKING_SIDE)
    try:
        ink = ink_of(image)
    except NoInk as nothing:
        return no_digits(f"no digits found: {nothing}")
    scale = image.info.get("stored_side", max(image.size)) / max(ink.shape)  # ink pixels -> original pixels

    def read(mask: np.ndarray) -> dict:
        return predict_pixels(place_ink(np.where(mask, ink, 0), layout), model, classes, top_k)

    digits = []
    # A cut is judged by how likely the digit it leaves is, whether or not the part is accepted.
    for digit in split_digits(ink, confidence=lambda mask: read(mask)["top_k"][0]["probability"]):
        reading = read(digit.mask)
        box = [round(v * scale) for v in digit.box]
        keys = ("state", "accepted", "label", "class", "candidates", "probability", "top_k")
        keys += ("pixels",) if with_pixels else ()
        digits.append({k: reading[k] for k in keys if k in reading} | {"box": box})
    if not digits:
        return no_digits("no digits found: no part of the ink is large enough to be one")
    read_digits = [d for d in digits if d["accepted"]]
    return {
        "text": "".join(UNREAD if d["state"] == "unsure" else d["class"] for d in digits if d["state"] != "rejected"),
        "probability": float(np.prod([d["probability"] for d in read_digits])) if read_digits else 0.0,
        "digits": digits,
    }


UNREAD = "?"  # in a number's text, a digit read unsure


def no_digits(reason: str) -> dict:
    """The reading of an image in which no digit was found, and why."""
    return {"text": "", "probability": 0.0, "digits": [], "reason": reason}


def draw_boxes(image: Image.Image, reading: dict) -> Image.Image:
    """A copy of the image with each digit's box and reading drawn on it, and the number above."""
    from PIL import ImageDraw, ImageFont

    canvas = image.convert("RGB")
    draw = ImageDraw.Draw(canvas)
    side = max(canvas.size)
    font = ImageFont.load_default(size=max(12, side // 30))
    line = max(2, side // 300)
    for digit in reading["digits"]:
        x, y, w, h = digit["box"]
        colour = {"accepted": (220, 40, 40), "unsure": (220, 140, 20)}.get(digit["state"], (130, 130, 130))
        draw.rectangle([x, y, x + w, y + h], outline=colour, width=line)
        top = max(0, y - side // 28)
        if digit["state"] != "rejected":
            said = digit["class"] if digit["accepted"] else "/".join(digit["candidates"]) + "?"
            draw.text((x, top), f"{said} {digit['probability']:.2f}", fill=colour, font=font)
            continue
        # Not a digit: a cross drawn as two lines (Pillow's default font has no "×"), then the probability.
        size, middle = font.size * 0.6, top + font.size * 0.55
        draw.line([(x, middle - size / 2), (x + size, middle + size / 2)], fill=colour, width=line)
        draw.line([(x, middle + size / 2), (x + size, middle - size / 2)], fill=colour, width=line)
        draw.text((x + size + font.size * 0.3, top), f"{digit['probability']:.2f}", fill=colour, font=font)
    draw.text((line * 2, line * 2), reading["text"], fill=(40, 90, 220), font=font)
    return canvas
