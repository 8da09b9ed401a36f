"""Label Studio's brush RLE: checked against a hand-worked example and a decoder that follows the format as Label
Studio's front end reads it (rle-pack: count, word size, four run-field widths, then chunks)."""

from __future__ import annotations

import numpy as np
import pytest

from imagerec.annotation.formats.brush_rle import encode_mask
from tests.annotation.brush_decode import decode_mask, decode_rle


def test_a_two_pixel_mask_encodes_to_the_hand_worked_bytes() -> None:
    bits = (
        f"{8:032b}" "00111" "0010" "0011" "0111" "1111"  # 8 words of 8 bits; run fields 3, 4, 8, 16 bits
        "1" "00" "011" "11111111"  # a run of 4 × 255: the first pixel's RGBA
        "1" "00" "011" "00000000"  # a run of 4 × 0
    )
    bits += "0" * (-len(bits) % 8)
    expected = [int(bits[i:i + 8], 2) for i in range(0, len(bits), 8)]
    assert encode_mask(np.array([[True, False]])) == expected


@pytest.mark.parametrize("mask", [
    np.zeros((7, 5), bool),
    np.ones((300, 400), bool),  # one run of 480 000 words: split into chunks of at most 65 536
    np.indices((9, 13)).sum(axis=0) % 2 == 0,  # a checkerboard: runs of one pixel
    np.random.default_rng(0).random((61, 47)) > 0.7,
], ids=["empty", "full", "checkerboard", "random"])
def test_masks_come_back_whole(mask: np.ndarray) -> None:
    encoded = encode_mask(mask)
    assert all(0 <= byte <= 255 for byte in encoded)
    flat = decode_rle(encoded)
    assert flat.size == mask.size * 4 and set(np.unique(flat)) <= {0, 255}
    assert np.array_equal(flat.reshape(*mask.shape, 4), np.repeat(mask[..., None], 4, axis=2) * np.uint8(255))
    assert np.array_equal(decode_mask(encoded, height=mask.shape[0], width=mask.shape[1]), mask)


def test_run_lengths_use_the_narrowest_field() -> None:
    # 2 pixels = 8 words fit the 3-bit field; 3 pixels = 12 words need the 4-bit one, 5 pixels = 20 the 8-bit one
    for pixels, chunk_bits in ((2, 3), (3, 4), (5, 8), (100, 16)):
        encoded = encode_mask(np.ones((1, pixels), bool))
        assert len(encoded) == -(-(32 + 5 + 16 + 1 + 2 + chunk_bits + 8) // 8)
