"""Dataset validation classifies broken files the same way once Ultralytics (which patches Image.open) is loaded."""

from __future__ import annotations

from imagerec.datasets.validation import check_image


def test_non_image_is_reported_plainly_after_ultralytics_import(tmp_path):
    import ultralytics  # noqa: F401  (replaces PIL.Image.open process-wide)

    fake = tmp_path / "notes.jpg"
    fake.write_text("this is not a picture")
    error, warning = check_image(fake, max_pixels=10_000)
    assert error is not None and "UnidentifiedImageError" in error and warning is None
