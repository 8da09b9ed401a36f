"""Image files for the annotation tests, made in memory: good ones, EXIF-rotated ones and every kind of bad one."""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image

EXIF_ORIENTATION = 0x0112


def jpeg_bytes(image: Image.Image, *, orientation: int | None = None, quality: int = 95) -> bytes:
    buffer = io.BytesIO()
    exif = Image.Exif()
    if orientation is not None:
        exif[EXIF_ORIENTATION] = orientation
    image.convert("RGB").save(buffer, format="JPEG", quality=quality, exif=exif.tobytes())
    return buffer.getvalue()


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def noise_jpeg(width: int = 640, height: int = 480) -> bytes:
    """A JPEG that compresses badly (random pixels), for byte-size limits and truncation."""
    import numpy as np

    pixels = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return jpeg_bytes(Image.fromarray(pixels))


def truncated_jpeg() -> bytes:
    whole = noise_jpeg(320, 240)
    return whole[: len(whole) * 3 // 5]  # header intact, scan data cut off


def text_named_jpg() -> bytes:
    return b"this is not an image, whatever its name says\n" * 10


def png_bomb(side: int = 20000) -> bytes:
    """A valid 1-bit ``side``×``side`` PNG (400 M pixels) that is a few tens of KB on disk."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)  # bit depth 1, greyscale
    row = b"\x00" * (1 + (side + 7) // 8)  # filter byte + packed pixels
    compressor = zlib.compressobj(9)
    data = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
