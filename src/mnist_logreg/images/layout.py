"""How an image is placed in 28×28, as each dataset does it: the one setting that image
preparation (images/preprocess.py) and the dataset table (data/catalog.py) share.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Layout:
    """How a dataset places its object in 28×28: MNIST fits digits into 20 px and centres them by
    centre of mass; Fashion-MNIST fills the 28 px and centres the bounding box. Without
    ``cleaned``, an image is only made grey and resized to 28×28 (a folder's ``--layout resize``)."""

    box: int = 20
    centre_of_mass: bool = True
    cleaned: bool = True  # the photo cleaning: ink found, made light on black, cropped and placed


# How a folder of one's own images is placed (``train --dataset FOLDER --layout NAME``): as MNIST's
# digits, for handwriting and symbols; or plain grey and resized, for pictures that fill their frame.
FOLDER_LAYOUTS = {"digits": Layout(), "resize": Layout(box=28, centre_of_mass=False, cleaned=False)}
