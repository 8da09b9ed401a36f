"""Safe decoding of untrusted image bytes: every refusal names the file and carries its status."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageOps

from imagerec.annotation.images import decode_image
from imagerec.config import Settings
from imagerec.errors import BadRequest, PayloadTooLarge, UnsupportedMedia
from tests.annotation.image_samples import (
    jpeg_bytes,
    noise_jpeg,
    png_bomb,
    png_bytes,
    text_named_jpg,
    truncated_jpeg,
)


@pytest.fixture
def limits(tmp_path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


def test_a_jpeg_becomes_a_bgr_array_of_its_size(limits: Settings) -> None:
    image = Image.new("RGB", (64, 48), (255, 0, 0))
    decoded = decode_image(jpeg_bytes(image), file_name="red.jpg", settings=limits)
    assert (decoded.file_name, decoded.width, decoded.height) == ("red.jpg", 64, 48)
    assert decoded.array.shape == (48, 64, 3) and decoded.array.dtype == np.uint8
    assert decoded.array.flags["C_CONTIGUOUS"]
    blue, green, red = decoded.array[24, 32].tolist()  # Ultralytics takes numpy input as BGR
    assert red > 240 and green < 15 and blue < 15


@pytest.mark.parametrize("mode", ["L", "P", "RGBA", "LA", "1", "I;16"])
def test_any_pixel_mode_becomes_three_channels(limits: Settings, mode: str) -> None:
    decoded = decode_image(png_bytes(Image.new(mode, (10, 7))), file_name=f"{mode}.png", settings=limits)
    assert decoded.array.shape == (7, 10, 3)


def test_exif_orientation_is_applied_so_coordinates_match_the_viewer(limits: Settings) -> None:
    stored = Image.new("RGB", (80, 40), (0, 0, 0))
    stored.paste((255, 255, 255), (0, 0, 16, 16))  # a white square in the stored top-left corner
    decoded = decode_image(jpeg_bytes(stored, orientation=6), file_name="rotated.jpg", settings=limits)
    # Orientation 6: the viewer turns the stored image 90° clockwise, so it is 40 wide, 80 high,
    # and the stored top-left corner is shown top-right.
    assert (decoded.width, decoded.height) == (40, 80)
    assert decoded.array[8, 40 - 8].min() > 200
    assert decoded.array[8, 8].max() < 60


def test_damaged_exif_falls_back_to_the_stored_orientation(limits: Settings) -> None:
    data = jpeg_bytes(Image.new("RGB", (30, 20)), orientation=6)
    damaged = data.replace(b"Exif\x00\x00MM", b"Exif\x00\x00XX").replace(b"Exif\x00\x00II", b"Exif\x00\x00XX")
    decoded = decode_image(damaged, file_name="odd-exif.jpg", settings=limits)
    assert decoded.array.shape[2] == 3


def test_zero_bytes_is_not_an_image(limits: Settings) -> None:
    with pytest.raises(UnsupportedMedia, match="empty.jpg"):
        decode_image(b"", file_name="empty.jpg", settings=limits)


def test_text_named_jpg_is_not_an_image(limits: Settings) -> None:
    with pytest.raises(UnsupportedMedia, match="notes.jpg is not an image"):
        decode_image(text_named_jpg(), file_name="notes.jpg", settings=limits)


def test_formats_outside_the_plain_raster_list_are_refused(limits: Settings) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32)).save(buffer, format="ICO")
    with pytest.raises(UnsupportedMedia, match="icon.ico"):
        decode_image(buffer.getvalue(), file_name="icon.ico", settings=limits)


def test_truncated_jpeg_is_corrupt(limits: Settings) -> None:
    with pytest.raises(BadRequest, match="cut.jpg is a corrupt or truncated image") as caught:
        decode_image(truncated_jpeg(), file_name="cut.jpg", settings=limits)
    assert caught.value.status_code == 400


@pytest.mark.parametrize("kept", [0.3, 0.9, 0.999])
def test_a_jpeg_cut_anywhere_in_its_scan_is_corrupt(limits: Settings, kept: float) -> None:
    whole = noise_jpeg(320, 240)
    with pytest.raises(BadRequest, match="cut.jpg is a corrupt or truncated image"):
        decode_image(whole[: int(len(whole) * kept)], file_name="cut.jpg", settings=limits)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_gives_what_a_viewer_shows(limits: Settings, orientation: int) -> None:
    stored = Image.new("RGB", (80, 40), (0, 0, 0))
    stored.paste((255, 255, 255), (0, 0, 16, 16))
    stored.paste((0, 0, 255), (64, 24, 80, 40))  # a blue square in the opposite corner: flips show
    data = jpeg_bytes(stored, orientation=orientation)
    with Image.open(io.BytesIO(data)) as opened:
        shown = np.asarray(ImageOps.exif_transpose(opened).convert("RGB"))[:, :, ::-1]
    decoded = decode_image(data, file_name="turned.jpg", settings=limits)
    assert decoded.array.shape == shown.shape
    assert np.abs(decoded.array.astype(int) - shown).max() <= 2


def test_bytes_after_the_jpeg_end_marker_are_ignored(limits: Settings) -> None:
    data = jpeg_bytes(Image.new("RGB", (40, 30), (255, 0, 0)))
    decoded = decode_image(data + b"camera trailer", file_name="trailer.jpg", settings=limits)
    assert decoded.array.shape == (30, 40, 3)
    blue, green, red = decoded.array[15, 20].tolist()
    assert red > 240 and green < 15 and blue < 15


def test_a_cmyk_jpeg_becomes_bgr(limits: Settings) -> None:
    buffer = io.BytesIO()
    Image.new("CMYK", (40, 30), (0, 255, 255, 0)).save(buffer, format="JPEG", quality=95)  # red in print
    decoded = decode_image(buffer.getvalue(), file_name="print.jpg", settings=limits)
    blue, green, red = decoded.array[15, 20].tolist()
    assert red > 220 and green < 40 and blue < 40


def test_over_the_byte_limit_is_refused_before_parsing(tmp_path) -> None:
    data = noise_jpeg(200, 200)
    small = Settings(data_dir=tmp_path / "data", annotate_max_file_bytes=len(data) - 1)
    with pytest.raises(PayloadTooLarge, match=f"big.jpg is {len(data)} bytes"):
        decode_image(data, file_name="big.jpg", settings=small)


def test_a_20000_square_png_bomb_is_refused_without_decoding(limits: Settings) -> None:
    data = png_bomb(20000)
    assert len(data) < 64 * 1024  # tens of KB on disk, 400 M pixels declared
    with pytest.raises(PayloadTooLarge, match="bomb.png") as caught:
        decode_image(data, file_name="bomb.png", settings=limits)
    assert caught.value.status_code == 413


def test_the_pixel_limit_is_checked_from_the_header(tmp_path) -> None:
    # 10000² = 100 M pixels: under Pillow's own bomb error (179 M), over our limit.
    strict = Settings(data_dir=tmp_path / "data", annotate_max_pixels=50_000_000)
    with pytest.raises(PayloadTooLarge, match="10000×10000 = 100000000 pixels"):
        decode_image(png_bomb(10000), file_name="wide.png", settings=strict)
    tiny = Settings(data_dir=tmp_path / "data", annotate_max_pixels=100)
    with pytest.raises(PayloadTooLarge, match="over the limit of 100 pixels"):
        decode_image(png_bytes(Image.new("RGB", (11, 10))), file_name="small.png", settings=tiny)
    assert decode_image(png_bytes(Image.new("RGB", (10, 10))), file_name="ok.png", settings=tiny).width == 10


def test_a_non_image_stays_415_after_ultralytics_patched_pillow(limits: Settings) -> None:
    # Importing Ultralytics replaces PIL.Image.open with one that tries to pip-install a HEIF plugin when Pillow
    # cannot identify a file; decoding must keep using Pillow's own.
    import ultralytics.utils.patches  # noqa: F401

    assert Image.open.__module__ != Image.__name__  # the patch is in place
    with pytest.raises(UnsupportedMedia, match="notes.jpg is not an image"):
        decode_image(text_named_jpg(), file_name="notes.jpg", settings=limits)
