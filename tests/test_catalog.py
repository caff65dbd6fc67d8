"""The dataset table: every dataset's files, checksums, classes and sources."""

from __future__ import annotations

import pytest

from mnist_logreg.data.catalog import DATASETS, get_spec


def test_pinned_tables_are_complete():
    for name, spec in DATASETS.items():
        assert spec.name == name
        assert [f.name for f in spec.files] == [
            "train-images-idx3-ubyte",
            "train-labels-idx1-ubyte",
            "t10k-images-idx3-ubyte",
            "t10k-labels-idx1-ubyte",
        ]
        assert len(spec.classes) == 10
        assert spec.sources
    assert DATASETS["fashion-mnist"].classes[0] == "T-shirt/top"
    with pytest.raises(ValueError, match="dataset='emnist' is not one of"):
        get_spec("emnist")
