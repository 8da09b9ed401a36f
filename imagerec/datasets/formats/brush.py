"""Label Studio's brush masks (``brushlabels`` regions, ``"format": "rle"``): decode to a mask, encode from one.

The bit format (thi.ng's "rle-pack", which Label Studio's front end uses) is described in
``imagerec.annotation.formats.brush_rle``, whose encoder this module re-exports. Decoding reads:

- the header: value count (32 bits), word size − 1 (5 bits), four run-length field widths − 1 (4 bits each);
- chunks until ``count`` values are out: 1 flag bit, 2 bits choosing a length field, the length − 1 in that
  field; flag 1 is one word repeated ``length`` times, flag 0 is ``length`` literal words.

The values are the RGBA bytes of the image-sized canvas; a pixel belongs to the mask when its alpha is not 0.
The count must be exactly width × height × 4 of the region's ``original_width``/``original_height``: a count that
disagrees is a corrupt region, and checking it first keeps a forged count from allocating gigabytes.
"""

from __future__ import annotations

import cv2
import numpy as np

from imagerec.annotation.formats.brush_rle import CHANNELS, encode_mask

__all__ = ["decode_mask", "encode_mask", "largest_contour"]

HEADER_FIELDS = (32, 5, 4, 4, 4, 4)
MAX_PIXELS = 1 << 28  # far above any photo; a region claiming more is refused before allocating


class _Bits:
    """Reads unsigned fields, most significant bit first, from the packed bytes."""

    def __init__(self, data: list[int]):
        if not all(isinstance(byte, int) and 0 <= byte <= 255 for byte in data):
            raise ValueError("rle must be a list of bytes (0–255)")
        self.bits = np.unpackbits(np.asarray(data, dtype=np.uint8))
        self.position = 0

    def read(self, width: int) -> int:
        end = self.position + width
        if end > self.bits.size:
            raise ValueError("rle ends in the middle of a field")
        value = 0
        for bit in self.bits[self.position:end].tolist():
            value = (value << 1) | bit
        self.position = end
        return value


def decode_mask(rle: list[int], *, width: int, height: int) -> np.ndarray:
    """The (height, width) boolean mask of a brush region; ValueError when the RLE is not a mask of that size."""
    if width <= 0 or height <= 0 or width * height > MAX_PIXELS:
        raise ValueError(f"brush size {width}x{height} is not usable")
    bits = _Bits(rle)
    count, word_bits, *length_fields = (bits.read(field_bits) for field_bits in HEADER_FIELDS)
    word_bits += 1
    length_fields = [field + 1 for field in length_fields]
    if count != width * height * CHANNELS:
        raise ValueError(f"rle holds {count} values, not the {width * height * CHANNELS} of a {width}x{height} "
                         "RGBA canvas")
    values = np.zeros(count, dtype=np.uint32)
    filled = 0
    while filled < count:
        repeated = bits.read(1)
        end = min(count, filled + 1 + bits.read(length_fields[bits.read(2)]))
        if repeated:
            values[filled:end] = bits.read(word_bits)
        else:
            values[filled:end] = [bits.read(word_bits) for _ in range(end - filled)]
        filled = end
    return values.reshape(height, width, CHANNELS)[:, :, 3] > 0


def largest_contour(mask: np.ndarray) -> list[tuple[float, float]] | None:
    """The pixel outline (x, y) of the mask's largest part; None when no part has an area."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return None
    largest = max(contours, key=cv2.contourArea)
    if len(largest) < 3 or cv2.contourArea(largest) <= 0:
        return None
    return [(float(x), float(y)) for x, y in largest.reshape(-1, 2)]
