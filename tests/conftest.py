"""Shared fixtures: small fake IDX datasets written by the tests, and the real data when marked."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from mnist_logreg.data import DatasetSpec, fetch
from mnist_logreg.idx import IdxFile, write_idx

REPO_ROOT = Path(__file__).resolve().parent.parent
REAL_DATA_DIR = REPO_ROOT / "data"

FAKE_TRAIN, FAKE_TEST = 300, 60


def make_images(labels: np.ndarray, seed: int) -> np.ndarray:
    """Learnable fake digits: class k lights a bar at row 2k plus noise, as uint8 (N, 28, 28)."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 60, size=(len(labels), 28, 28), dtype=np.uint8)
    for i, label in enumerate(labels):
        images[i, 2 * label + 3 : 2 * label + 6, 4:24] = rng.integers(180, 256, size=(3, 20))
    return images


def write_fake_files(folder: Path, seed: int = 0) -> dict[str, bytes]:
    """Write the four IDX files of a small fake dataset into ``folder``; return their contents."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    train_labels = rng.integers(0, 10, FAKE_TRAIN).astype(np.uint8)
    test_labels = rng.integers(0, 10, FAKE_TEST).astype(np.uint8)
    arrays = {
        "train-images-idx3-ubyte": make_images(train_labels, seed + 1),
        "train-labels-idx1-ubyte": train_labels,
        "t10k-images-idx3-ubyte": make_images(test_labels, seed + 2),
        "t10k-labels-idx1-ubyte": test_labels,
    }
    return {name: write_idx(folder / name, array) for name, array in arrays.items()}


def fake_spec(contents: dict[str, bytes], sources=()) -> DatasetSpec:
    shapes = {
        "train-images-idx3-ubyte": (FAKE_TRAIN, 28, 28),
        "train-labels-idx1-ubyte": (FAKE_TRAIN,),
        "t10k-images-idx3-ubyte": (FAKE_TEST, 28, 28),
        "t10k-labels-idx1-ubyte": (FAKE_TEST,),
    }
    files = tuple(
        IdxFile(name, shapes[name], hashlib.sha256(content).hexdigest()) for name, content in contents.items()
    )
    return DatasetSpec(
        name="fake-mnist",
        folder="MNIST",
        files=files,
        classes=tuple(str(d) for d in range(10)),
        sources=tuple(sources),
    )


@pytest.fixture
def fake_source(tmp_path) -> tuple[Path, dict[str, bytes]]:
    """A folder holding a fake dataset's files, as a download source would provide them."""
    folder = tmp_path / "source"
    return folder, write_fake_files(folder)


@pytest.fixture
def fake_data(tmp_path, fake_source) -> tuple[DatasetSpec, Path]:
    """A fake dataset already fetched into a data dir: (spec, data_dir)."""
    from mnist_logreg.data import from_folder

    folder, contents = fake_source
    spec = fake_spec(contents, sources=[from_folder(folder)])
    data_dir = tmp_path / "data"
    fetch(spec, data_dir)
    return spec, data_dir


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    """The real MNIST and Fashion-MNIST, fetched (and verified) into the repo's data/ folder."""
    fetch("mnist", REAL_DATA_DIR)
    fetch("fashion-mnist", REAL_DATA_DIR)
    return REAL_DATA_DIR


def train_preset(dataset, preset: str, data_dir, run_dir, **overrides):
    """Train a preset (with ``overrides``) quietly into ``run_dir``; return the RunResult."""
    from mnist_logreg.experiment import train_run
    from mnist_logreg.training import get_preset

    config = get_preset(preset, dataset if isinstance(dataset, str) else "mnist").updated(**overrides)
    return train_run(
        dataset, config, preset=preset, data_dir=data_dir, run_dir=run_dir, verbose=False, log=lambda message: None
    )
