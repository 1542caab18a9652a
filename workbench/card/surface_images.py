"""Synthetic images for the surface AP (券面AP): clearly artificial, deterministic, small.

The real card face holds the name and address as 1-bit PNGs, the photo as JPEG 2000 and the
individual number as a 72×12 PNG (jpki-card.md 3.4). Ours draw a pattern derived from a hash
of the text, never readable text, so no image can pass for a real card's.
"""

from __future__ import annotations

import hashlib
import io
import struct
import zlib


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_1bit(width: int, height: int, rows: list[bytes]) -> bytes:
    """Encode a 1-bit greyscale PNG (PNG spec, colour type 0, bit depth 1) from packed rows."""
    raw = b"".join(b"\x00" + row for row in rows)
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(raw, 9))
        + _chunk(b"IEND", b"")
    )


def pattern_png(text: str, width: int, height: int) -> bytes:
    """A deterministic bar pattern standing in for rendered text (synthetic on purpose)."""
    seed = hashlib.sha256(text.encode("utf-8")).digest()
    row_bytes = (width + 7) // 8
    stream = hashlib.shake_256(seed).digest(row_bytes)
    rows = []
    for y in range(height):
        if y in (0, height - 1):
            rows.append(b"\xff" * row_bytes)  # white border rows
        else:
            rows.append(stream)
    return png_1bit(width, height, rows)


def synthetic_photo(seed_text: str, size: int = 32) -> bytes:
    """A small JPEG 2000 'photo': a grey gradient keyed by a hash. Falls back to PNG when
    Pillow has no JPEG 2000 codec."""
    from PIL import Image

    h = hashlib.sha256(seed_text.encode("utf-8")).digest()
    img = Image.new("L", (size, size))
    img.putdata([(x * 7 + y * 5 + h[(x + y) % 32]) % 256 for y in range(size) for x in range(size)])
    out = io.BytesIO()
    try:
        img.save(out, format="JPEG2000")
    except (OSError, KeyError):
        out = io.BytesIO()
        img.save(out, format="PNG")
    return out.getvalue()
