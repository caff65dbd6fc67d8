"""Writing a file atomically: a failure mid-write leaves the previous version in place."""

from __future__ import annotations

import pytest

from mnist_logreg.files import written_atomically


def test_a_write_that_fails_midway_leaves_the_previous_version(tmp_path):
    path = tmp_path / "model.json"
    path.write_text("version 1")
    with pytest.raises(OSError), written_atomically(path) as partial:
        partial.write_text("half of version")
        raise OSError("disk full")
    assert path.read_text() == "version 1"
    with written_atomically(path) as partial:
        partial.write_text("version 2")
    assert path.read_text() == "version 2"
    assert [p.name for p in tmp_path.iterdir()] == ["model.json"]  # the next write took over the leftover
