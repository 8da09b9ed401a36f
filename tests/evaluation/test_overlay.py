"""The evaluation overlay: every outcome shows in its colour at its box, on any image mode, size and font."""

from __future__ import annotations

import importlib.util
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imagerec.evaluation.overlay import OUTCOME_COLOURS, draw_overlay

BACKGROUND = 40
NAMES = {0: "cat", 1: "dog"}
# The scene as fractions of the image: one pair of each kind, and a prediction below the operating confidence
# (in no pair) that must not be drawn.
LABELS = [[0, .08, .10, .30, .40], [1, .45, .10, .70, .40], [0, .08, .58, .30, .88], [1, .45, .58, .70, .88]]
PREDICTIONS = [[0, .91, .09, .11, .31, .41], [0, .80, .46, .12, .71, .42], [0, .60, .14, .66, .36, .95],
               [1, .55, .76, .62, .95, .85], [0, .10, .33, .46, .40, .52]]
PAIRS = [{"kind": "tp", "label": 0, "prediction": 0, "score": .91},
         {"kind": "wrong_class", "label": 1, "prediction": 1, "score": .80},
         {"kind": "localisation", "label": 2, "prediction": 2, "score": .60},
         {"kind": "fp", "label": None, "prediction": 3, "score": .55},
         {"kind": "fn", "label": 3, "prediction": None, "score": None}]
UNPAIRED_PREDICTION = 4


def _dejavu() -> Path:
    matplotlib = importlib.util.find_spec("matplotlib")  # its path only: importing it would write a font cache
    assert matplotlib is not None and matplotlib.submodule_search_locations
    return Path(matplotlib.submodule_search_locations[0]) / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf"


def _scene(width: int, height: int) -> tuple[list[list[float]], list[list[float]]]:
    def pixels(xyxy: list[float]) -> list[float]:
        return [xyxy[0] * width, xyxy[1] * height, xyxy[2] * width, xyxy[3] * height]

    return ([[cls, *pixels(xyxy)] for cls, *xyxy in LABELS],
            [[cls, conf, *pixels(xyxy)] for cls, conf, *xyxy in PREDICTIONS])


def _overlay(image: Image.Image, font_path: Path | None) -> np.ndarray:
    labels, predictions = _scene(*image.size)
    png = draw_overlay(image, labels=labels, predictions=predictions, pairs=PAIRS, names=NAMES, font_path=font_path)
    decoded = Image.open(io.BytesIO(png))
    assert decoded.format == "PNG" and decoded.mode == "RGB"
    return np.asarray(decoded)


def _ring(pixels: np.ndarray, row: list[float], factor: int) -> np.ndarray:
    """The pixels on the box's outline, as the overlay places it on the enlarged canvas."""
    x1, y1, x2, y2 = (round(value * factor) for value in row[-4:])
    return np.concatenate([pixels[y1, x1:x2 + 1], pixels[y2, x1:x2 + 1], pixels[y1:y2 + 1, x1], pixels[y1:y2 + 1, x2]])


def _share(ring: np.ndarray, colour: tuple[int, int, int]) -> float:
    return float((ring == colour).all(axis=1).mean())


@pytest.mark.parametrize(("size", "mode", "font", "factor"), [
    ((128, 96), "RGB", None, 3),
    ((128, 96), "L", "dejavu", 3),
    ((64, 64), "L", None, 5),
    ((640, 480), "RGB", "dejavu", 1),
])
def test_each_outcome_shows_in_its_colour_at_its_boxes(size: tuple[int, int], mode: str, font: str | None,
                                                       factor: int) -> None:
    image = Image.new(mode, size, BACKGROUND if mode == "L" else (BACKGROUND,) * 3)
    pixels = _overlay(image, _dejavu() if font else None)

    assert pixels.shape == (size[1] * factor, size[0] * factor, 3)
    labels, predictions = _scene(*size)
    for pair in PAIRS:
        colour = OUTCOME_COLOURS[pair["kind"]]
        if pair["label"] is not None:  # solid: most of the outline
            assert _share(_ring(pixels, labels[pair["label"]], factor), colour) > 0.5, pair["kind"]
        if pair["prediction"] is not None:  # dashed: more than a third of it
            assert _share(_ring(pixels, predictions[pair["prediction"]], factor), colour) > 0.35, pair["kind"]
    untouched = _ring(pixels, predictions[UNPAIRED_PREDICTION], factor)
    assert (untouched == BACKGROUND).all(), "a prediction in no pair was drawn"


def test_the_given_font_is_the_one_drawn() -> None:
    image = Image.new("RGB", (128, 96), (BACKGROUND,) * 3)
    assert not np.array_equal(_overlay(image, _dejavu()), _overlay(image, None))


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown pair kind"):
        draw_overlay(Image.new("RGB", (8, 8)), labels=[], predictions=[[0, .9, 1, 1, 4, 4]],
                     pairs=[{"kind": "maybe", "label": None, "prediction": 0, "score": .9}], names={}, font_path=None)
