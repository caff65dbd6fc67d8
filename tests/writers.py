"""Writers nobody here is: each handwriting font that ``make fonts`` unpacks is one writer, whose
digits are photos of a note (tests/letters.py) at several sizes and slants, each turned a little
at random. A writer's folder has the ``train --dataset FOLDER`` layout with a test split of its
own: ``k`` photos per digit to learn from in train/, and HELD_OUT others per digit in test/, the
same for every ``k``, so that scores after different ``k`` compare.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from tests.letters import on_paper

SIZES = (60, 75, 90, 105, 120)  # px of the font: small and large hands
SLANTS = (-8, -4, 0, 4, 8)  # degrees, each with up to ±2 more at random
HELD_OUT = 15  # photos per digit that no tuning sees: 25 per digit in all, so k is at most 10
FOLDER_FONT = "femkeklaver"  # the writer of ``python -m tests.writers``: the default run reads half its digits


def write_writer(root: Path, font: Path, k: int, seed: int = 0) -> Path:
    """The folder of the writer ``font`` with ``k`` photos per digit to learn from: root/train/<digit>/
    and root/test/<digit>/, PNG files."""
    rng = np.random.default_rng(seed)
    shots = [(size, slant) for size in SIZES for slant in SLANTS]
    assert k + HELD_OUT <= len(shots)
    for digit in range(10):
        order = rng.permutation(len(shots))
        turns = rng.uniform(-2, 2, len(shots))
        chosen = {"train": order[:k], "test": order[len(shots) - HELD_OUT :]}
        for split, indices in chosen.items():
            (root / split / str(digit)).mkdir(parents=True, exist_ok=True)
            for i in indices:
                size, slant = shots[i]
                photo = on_paper(str(digit), font, size).rotate(slant + turns[i], expand=True, fillcolor=235)
                photo.save(root / split / str(digit) / f"{i:02d}.png")
    return root


def main(argv: list[str]) -> None:
    """``python -m tests.writers FOLDER [K]``: one writer's folder, in the font furthest from MNIST's pen."""
    from tests.letters import fonts

    if not 1 <= len(argv) <= 2:
        sys.exit("usage: python -m tests.writers FOLDER [K]")
    font = next((font for font in fonts() if font.stem == FOLDER_FONT), fonts()[0])
    k = int(argv[1]) if len(argv) == 2 else 5
    write_writer(Path(argv[0]), font, k)
    print(f"wrote the writer {font.stem} into {argv[0]}: {k} photos per digit in train/, {HELD_OUT} in test/")


if __name__ == "__main__":
    main(sys.argv[1:])
