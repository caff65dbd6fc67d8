"""Handwritten-looking letters: the held-out non-digits of the reject tests, and a folder dataset.

The letters are rendered from Debian's handwriting fonts (``make fonts`` unpacks them into
data/fonts), dark on light paper, as a photo of a note would show them, and reach the model
through the same cleaning as any photo. Letters a careful reader could take for a digit are
left out (``LIKE_DIGITS``): O o D for 0, I l i j for 1, Z z for 2, S s for 5, b G for 6, T t
for 7, B for 8, g q for 9; rejecting those would be wrong as often as right.

``python -m tests.letters FOLDER`` writes the capital letters A to Z as a folder dataset of one's
own (docs/your-own-images.md): FOLDER/train/<letter>/ in eleven of the fonts, FOLDER/test/<letter>/
in three fonts the training never sees, each letter at three sizes and three slants.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from tests.helpers import REAL_DATA_DIR

FONT_DIR = REAL_DATA_DIR / "fonts"
LIKE_DIGITS = set("OoDIlijZzSsbGTtBgq")
LETTERS = [c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz" if c not in LIKE_DIGITS]


class NoFonts(FileNotFoundError):
    """Debian's handwriting fonts are not unpacked yet."""


def fonts() -> list[Path]:
    found = sorted(path for path in FONT_DIR.glob("*") if path.suffix in (".ttf", ".otf"))
    if not found:
        raise NoFonts(f"no fonts in {FONT_DIR}: run 'make fonts' first (it unpacks Debian's handwriting fonts)")
    return found


def on_paper(text: str, font: Path, size: int = 90) -> Image.Image:
    """``text`` in dark ink on light grey paper, centred on a canvas with room around it."""
    face = ImageFont.truetype(str(font), size)
    left, top, right, bottom = face.getbbox(text)
    width, height = right - left + size, bottom - top + size
    image = Image.new("L", (width, height), 235)
    ImageDraw.Draw(image).text((width / 2, height / 2), text, fill=30, font=face, anchor="mm")
    return image


def letter_photos() -> list[tuple[str, str, Image.Image]]:
    """(font name, letter, photo) for every letter of ``LETTERS`` in every font."""
    return [(font.stem, letter, on_paper(letter, font)) for font in fonts() for letter in LETTERS]


def letter_answers(weights, info) -> list[dict]:
    """``predict``'s answer to each of the letters (``letter_photos``), read through the whole photo
    path as a PNG file."""
    from mnist_logreg.infer.classify import predict_image_file
    from tests.photos import image_bytes

    return [predict_image_file(image_bytes(photo), weights, info) for _, _, photo in letter_photos()]


def letters_refused(run_dir: Path) -> float:
    """The share of the letters (``letter_answers``) a run does not accept as digits."""
    from mnist_logreg.model.linear import load_weights

    return float(np.mean([not answer["accepted"] for answer in letter_answers(*load_weights(run_dir))]))


def single_dot() -> Image.Image:
    """A photo of paper with one pen dot on it."""
    image = Image.new("L", (300, 240), 235)
    ImageDraw.Draw(image).ellipse([140, 110, 152, 122], fill=30)
    return image


def uniform_noise(seed: int, side: int = 200) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (side, side), dtype=np.uint8), mode="L")


# Three fonts the training never sees, each of a family it does: a new hand in a familiar style.
TEST_FONTS = ("BecauseWeMentor-Regular", "dkgIt", "Breip")
CAPITALS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def write_letter_folder(root: Path, sizes=(70, 90, 110), slants=(-8, 0, 8)) -> Path:
    """The capital letters as a folder dataset with a test split of its own: root/{train,test}/<letter>/*.png."""
    for font in fonts():
        split = "test" if font.stem in TEST_FONTS else "train"
        for letter in CAPITALS:
            folder = root / split / letter
            folder.mkdir(parents=True, exist_ok=True)
            for size in sizes:
                for slant in slants:
                    photo = on_paper(letter, font, size).rotate(slant, expand=True, fillcolor=235)
                    photo.save(folder / f"{font.stem}-{size}-{slant:+d}.png")
    return root


def main(argv: list[str]) -> None:
    """``python -m tests.letters FOLDER``: the letters folder, or one line saying what is missing."""
    if len(argv) != 1:
        sys.exit("usage: python -m tests.letters FOLDER")
    try:
        print(f"wrote {write_letter_folder(Path(argv[0]))}")
    except NoFonts as error:
        sys.exit(f"error: {error}")


if __name__ == "__main__":
    main(sys.argv[1:])
