"""Label Studio's brush mask encoding (``"format": "rle"`` of a ``brushlabels`` region).

Label Studio stores a brush mask as the RGBA bytes of an image-sized canvas (each pixel's value four times),
packed with the "rle-pack" bit format its front end decodes:

- header: the value count (32 bits), the word size − 1 (5 bits; 8-bit words), four run-length field widths − 1
  (4 bits each; here 3, 4, 8 and 16 bits);
- then chunks: 1 bit (1 = a run of one repeated word), 2 bits choosing a field width, the run length − 1 in that
  many bits, the word (8 bits);
- bits most significant first, the last byte padded with zeros.

A mask pixel is 255 on every channel, the rest 0. Runs come from ``np.diff`` on the flat mask, so encoding costs
one pass over the pixels plus a few bit fields per run.
"""

from __future__ import annotations

import numpy as np

WORD_BITS = 8
CHANNELS = 4  # RGBA
RUN_FIELD_BITS = (3, 4, 8, 16)
LONGEST_CHUNK = 1 << RUN_FIELD_BITS[-1]


def encode_mask(mask: np.ndarray) -> list[int]:
    """An (H, W) boolean mask → the byte list Label Studio keeps in ``value.rle``."""
    flat = np.ascontiguousarray(mask, dtype=bool).ravel()
    fields: list[tuple[int, int]] = [(flat.size * CHANNELS, 32), (WORD_BITS - 1, 5)]
    fields += [(width - 1, 4) for width in RUN_FIELD_BITS]
    for value, length in _runs(flat):
        fields += _run_fields(255 if value else 0, length * CHANNELS)
    return _pack(fields)


def _runs(flat: np.ndarray) -> list[tuple[bool, int]]:
    if flat.size == 0:
        return []
    starts = np.concatenate(([0], np.flatnonzero(flat[1:] != flat[:-1]) + 1))
    lengths = np.diff(np.concatenate((starts, [flat.size])))
    return list(zip(flat[starts].tolist(), lengths.tolist(), strict=True))


def _run_fields(word: int, length: int) -> list[tuple[int, int]]:
    """(value, bits) fields of one run: chunks of at most 2**16 words, each with the narrowest length field."""
    fields = []
    while length > 0:
        chunk = min(length, LONGEST_CHUNK)
        choice = next(i for i, width in enumerate(RUN_FIELD_BITS) if chunk - 1 < 1 << width)
        fields += [(1, 1), (choice, 2), (chunk - 1, RUN_FIELD_BITS[choice]), (word, WORD_BITS)]
        length -= chunk
    return fields


def _pack(fields: list[tuple[int, int]]) -> list[int]:
    bits = "".join(format(value, f"0{width}b") for value, width in fields)
    return np.packbits(np.frombuffer(bits.encode(), np.uint8) - ord("0")).tolist()  # zero-padded to a byte
