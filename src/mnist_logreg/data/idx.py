"""Reading and checking IDX files, the format MNIST and Fashion-MNIST ship in.

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number of
dimensions), one big-endian uint32 per dimension, then the values. Both datasets use
unsigned bytes: images are idx3 (N, 28, 28), labels idx1 (N,).
"""

from __future__ import annotations

import gzip
import hashlib
import struct
from pathlib import Path

import numpy as np

from ..errors import DataError
from .catalog import IdxFile

GZIP_MAGIC = b"\x1f\x8b"


def maybe_gunzip(content: bytes, label: str) -> bytes:
    """Return ``content`` uncompressed if it is gzip data, unchanged otherwise."""
    if not content.startswith(GZIP_MAGIC):
        return content
    try:
        return gzip.decompress(content)
    except (OSError, EOFError) as error:
        raise DataError(f"{label}: corrupt gzip data ({error})") from None


def check_idx(content: bytes, expected: IdxFile, label: str) -> None:
    """Raise DataError unless ``content`` is exactly the uncompressed file ``expected``.

    The structural checks come first so that a truncated or foreign file gets a message that
    says what is wrong with it, not just "checksum mismatch".
    """
    if len(content) < 4:
        raise DataError(f"{label}: only {len(content)} bytes, not an IDX file")
    magic = struct.unpack(">I", content[:4])[0]
    if magic != expected.magic:
        raise DataError(
            f"{label}: wrong magic number 0x{magic:08x} (expected 0x{expected.magic:08x}); "
            "not an unsigned-byte IDX file of this kind"
        )
    ndim = len(expected.shape)
    header_size = 4 + 4 * ndim
    if len(content) < header_size:
        raise DataError(f"{label}: truncated header ({len(content)} bytes)")
    shape = struct.unpack(f">{ndim}I", content[4:header_size])
    if tuple(shape) != tuple(expected.shape):
        raise DataError(f"{label}: shape {tuple(shape)} in header, expected {tuple(expected.shape)}")
    if len(content) != expected.size:
        kind = "truncated" if len(content) < expected.size else "too long"
        raise DataError(f"{label}: {kind}, {len(content)} bytes where {expected.size} were expected")
    digest = hashlib.sha256(content).hexdigest()
    if digest != expected.sha256:
        raise DataError(f"{label}: SHA-256 {digest[:16]}… does not match the pinned {expected.sha256[:16]}…")


def read_idx(path: Path) -> np.ndarray:
    """Read an uncompressed unsigned-byte IDX file into a (writable) array of its shape."""
    with open(path, "rb") as file:
        ndim = struct.unpack(">I", file.read(4))[0] & 0xFF
        shape = struct.unpack(f">{ndim}I", file.read(4 * ndim))
        values = np.fromfile(file, dtype=np.uint8)  # straight into the array: no second copy
    return values.reshape(shape)
