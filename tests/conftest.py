"""Fixtures: small fake IDX datasets written by the tests, and the real data when marked."""

from __future__ import annotations

from pathlib import Path

import pytest

from mnist_logreg.data.catalog import DatasetSpec
from mnist_logreg.data.fetch import fetch, from_folder
from tests.helpers import (
    REAL_DATA_DIR,
    fake_spec,
    train_preset,
    untrained_run,
    write_fake_files,
    write_shape_folder,
)


@pytest.fixture
def fake_source(tmp_path) -> tuple[Path, dict[str, bytes]]:
    """A folder holding a fake dataset's files, as a download source would provide them."""
    folder = tmp_path / "source"
    return folder, write_fake_files(folder)


@pytest.fixture
def fake_data(tmp_path, fake_source) -> tuple[DatasetSpec, Path]:
    """A fake dataset already fetched into a data dir: (spec, data_dir)."""
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


@pytest.fixture(scope="session")
def default_run(real_data_dir, tmp_path_factory):
    """The default preset trained once on MNIST and shared by every test that needs it: the RunResult.
    Tests may add files to its folder (a report, an export) but change none of what it holds."""
    return train_preset("mnist", "default", real_data_dir, tmp_path_factory.mktemp("default") / "run")


@pytest.fixture
def run_dir(tmp_path) -> Path:
    """A run folder of an untrained digits model: enough to predict, read and serve."""
    return untrained_run(tmp_path / "run")


@pytest.fixture(scope="session")
def shapes_run(tmp_path_factory) -> Path:
    """A run trained on a folder of drawn shapes (bars, circles, crosses), once for the session: a real
    run, with its data beside it, that tune and ``serve --corrections`` can tune in a second."""
    from mnist_logreg.config import TrainConfig
    from mnist_logreg.data.folders import open_folder
    from mnist_logreg.train.run import train_run

    root = tmp_path_factory.mktemp("shapes")
    folder = write_shape_folder(root / "shapes", per_class=40)
    config = TrainConfig(epochs=8, lr=0.05, batch_size=16, optimizer="sgd", val_size=12, seed=1)
    train_run(open_folder(folder), config, preset="test", run_dir=root / "run", verbose=False, log=lambda m: None)
    return root / "run"
