"""The images the documentation's examples read, made from MNIST's test digits.

``python -m tests.examples FOLDER`` (after ``mnist-logreg fetch --dataset mnist``) writes into
FOLDER what a reader would point the commands at: a photo of a digit, two drawings, a sticky note
with a number on it, and a few single digits. ``examples/`` is ignored by git, so the pages write
their images there and leave a clone as it was.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from mnist_logreg.data.catalog import DATASETS, DEFAULT_DATA_DIR
from mnist_logreg.data.fetch import missing_files
from mnist_logreg.data.idx import read_idx
from mnist_logreg.errors import DataError
from tests.photos import MAKERS, seven
from tests.written_numbers import compose, on_lit_paper


def write_examples(folder: Path, data_dir: Path = DEFAULT_DATA_DIR) -> list[Path]:
    """Write the examples' images into ``folder``; return their paths. Raises DataError without MNIST."""
    mnist = DATASETS["mnist"]
    if missing_files(mnist, data_dir):
        raise DataError(f"MNIST is not in {data_dir}: run 'mnist-logreg fetch --dataset mnist' first")
    digits = read_idx(mnist.raw_dir(data_dir) / mnist.files[2].name)  # the test images: never trained on
    rng = np.random.default_rng(3)
    (folder / "drawings").mkdir(parents=True, exist_ok=True)
    images = {
        "photo.jpg": MAKERS["paper-jpeg"](digits[0], rng).convert("RGB"),  # a 7 on paper, as a phone saves it
        "drawings/two.png": MAKERS["transparent"](digits[1], rng),
        "drawings/seven.png": seven(),
        "sticky-note.jpg": on_lit_paper(compose([digits[i] for i in (0, 1, 2)], rng), rng).convert("RGB"),  # 721
        "digit.png": seven(),
        "a.png": seven(),
        "b.jpg": MAKERS["paper"](digits[3], rng).convert("RGB"),
    }
    for name, image in images.items():
        image.save(folder / name)
    return [folder / name for name in images]


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m tests.examples FOLDER")
    try:
        written = write_examples(Path(sys.argv[1]))
    except DataError as error:
        sys.exit(f"error: {error}")
    print(f"wrote {len(written)} images into {sys.argv[1]}: {', '.join(p.name for p in written)}")
