"""Minimal, fast, byte-deterministic PNG writer for 8-bit RGB arrays.

Each row uses the "Up" filter (difference to the row above) and the stream is Huffman-only
deflate at level 1: about three times faster than Pillow's adaptive filtering, with similar size
for noisy images. The bytes depend only on the pixels and zlib (no timestamps, no Pillow
version), which keeps the generated data set byte-identical across machines.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_UP_FILTER = 2


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def encode_png(pixels: np.ndarray) -> bytes:
    """PNG bytes of a ``uint8`` ``(height, width, 3)`` RGB array.

    Raises:
        ValueError: For another dtype or shape.
    """
    if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] != 3:
        raise ValueError(f"need uint8 (H, W, 3) pixels, got {pixels.dtype} {pixels.shape}")
    height, width, _ = pixels.shape
    rows = pixels.reshape(height, width * 3)
    filtered = np.empty((height, width * 3 + 1), dtype=np.uint8)
    filtered[:, 0] = _UP_FILTER
    filtered[0, 1:] = rows[0]
    np.subtract(rows[1:], rows[:-1], out=filtered[1:, 1:])
    packer = zlib.compressobj(1, zlib.DEFLATED, 15, 9, zlib.Z_HUFFMAN_ONLY)
    stream = packer.compress(filtered.tobytes()) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return _SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", stream) + _chunk(b"IEND", b"")


def write_png(path: Path, pixels: np.ndarray) -> None:
    """Write ``pixels`` (see :func:`encode_png`) to ``path``."""
    Path(path).write_bytes(encode_png(pixels))
