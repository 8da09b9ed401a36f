"""Reading Label Studio's brush RLE back, as its front end does (rle-pack: a count, the word size, four run-field
widths, then chunks), so that tests check the encoder against the format rather than against itself."""

from __future__ import annotations

import numpy as np


class _Bits:
    def __init__(self, data: list[int]) -> None:
        self.bits = np.unpackbits(np.array(data, np.uint8))
        self.position = 0

    def read(self, count: int) -> int:
        value = 0
        for bit in self.bits[self.position:self.position + count]:
            value = value << 1 | int(bit)
        self.position += count
        return value


def decode_rle(data: list[int]) -> np.ndarray:
    """The flat array a brush RLE holds (a chunk bit of 0 means ``length`` literal words follow)."""
    bits = _Bits(data)
    count, word_bits = bits.read(32), bits.read(5) + 1
    run_fields = [bits.read(4) + 1 for _ in range(4)]
    out = np.zeros(count, np.uint8)
    index = 0
    while index < count:
        repeated = bits.read(1)
        end = index + 1 + bits.read(run_fields[bits.read(2)])
        if repeated:
            out[index:end] = bits.read(word_bits)
        else:
            out[index:end] = [bits.read(word_bits) for _ in range(end - index)]
        index = end
    return out


def decode_mask(data: list[int], *, height: int, width: int) -> np.ndarray:
    return decode_rle(data).reshape(height, width, 4)[:, :, 3] > 0
