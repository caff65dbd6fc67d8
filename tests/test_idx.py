"""The IDX format: checking a file's header, size and checksum."""

from __future__ import annotations

import pytest

from mnist_logreg.data.catalog import IdxFile
from mnist_logreg.data.idx import check_idx
from mnist_logreg.errors import DataError


def test_check_idx_names_the_shape_when_the_header_disagrees():
    expected = IdxFile("x", (3,), "0" * 64)
    with pytest.raises(DataError, match=r"shape \(4,\) in header, expected \(3,\)"):
        check_idx(b"\x00\x00\x08\x01\x00\x00\x00\x04abcd", expected, "x")
