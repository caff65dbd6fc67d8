"""Writing a file so that a crash or a kill mid-write never leaves half of it where it is read."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def written_atomically(path: Path) -> Iterator[Path]:
    """A scratch path beside ``path`` for the body to write; then it replaces ``path`` in one step.

    A stop before the end leaves ``path`` as it was (the previous version, or none).
    """
    partial = path.with_name(f".{path.name}.partial")
    yield partial
    partial.replace(path)
