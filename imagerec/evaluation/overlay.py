"""One image with its ground truth and the model's matched predictions drawn on it, so a person sees errors at a glance.

Rules:

- Input is what ``matching`` takes and gives: labels ``[cls, x1, y1, x2, y2]`` and predictions
  ``[cls, conf, x1, y1, x2, y2]`` in original pixels, and its ``pairs`` (``kind``, ``label``, ``prediction``).
- Ground truth is a solid thin outline tagged ``GT <name>`` under its box; a prediction is a dashed thicker outline
  tagged ``<name> <conf> <kind>`` above it, so a matched pair's tags do not sit on each other. Predictions are drawn
  first: a thin label stays visible on top of a prediction that covers it; tags go on after every outline.
- Colour is the outcome of the box's pair (``OUTCOME_COLOURS``); a label in no pair is grey.
- Only predictions named in ``pairs`` are drawn: the pairs hold the predictions above the operating confidence.
- An image under ``MIN_LONG_SIDE`` px on its long side is enlarged by an integer factor (nearest neighbour, so its
  pixels stay true) and every coordinate with it; line widths and font size follow the long side after that.
- The legend sits in the corner that covers the least box area (top left when that ties), under everything else.
- Any image mode is drawn as RGB; the result is PNG bytes.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from PIL import Image, ImageDraw, ImageFont

from imagerec.evaluation.matching import OUTCOMES, label_array, prediction_array

Colour = tuple[int, int, int]
Font = ImageFont.FreeTypeFont | ImageFont.ImageFont
XYXY = tuple[int, int, int, int]

MIN_LONG_SIDE = 320
OUTCOME_COLOURS: dict[str, Colour] = {
    "tp": (0, 200, 0),  # green
    "fp": (230, 0, 0),  # red
    "fn": (255, 140, 0),  # orange
    "wrong_class": (230, 0, 230),  # magenta
    "localisation": (255, 215, 0),  # amber
}
UNPAIRED: Colour = (160, 160, 160)
LEGEND_LINES: Colour = (255, 255, 255)


@dataclass(frozen=True)
class _Box:
    xyxy: XYXY  # on the (enlarged) canvas
    colour: Colour
    tag: str
    prediction: bool


@dataclass(frozen=True)
class _Pen:
    thin: int  # ground truth
    thick: int  # predictions
    font: Font
    legend_font: Font


def legend_entries() -> list[tuple[str, Colour]]:
    """The legend's outcome rows, in ``OUTCOMES`` order: (text, colour). Kind names only, to keep it small."""
    return [(kind, OUTCOME_COLOURS[kind]) for kind in OUTCOMES]


def upscale_factor(width: int, height: int) -> int:
    long_side = max(width, height, 1)
    return 1 if long_side >= MIN_LONG_SIDE else math.ceil(MIN_LONG_SIDE / long_side)


def draw_overlay(image: Image.Image, *, labels: ArrayLike, predictions: ArrayLike, pairs: Sequence[Mapping[str, Any]],
                 names: Mapping[int, str], font_path: Path | None) -> bytes:
    factor = upscale_factor(*image.size)
    canvas = image.convert("RGB")
    if factor > 1:
        canvas = canvas.resize((canvas.width * factor, canvas.height * factor), Image.Resampling.NEAREST)
    pen = _pen(max(canvas.size), font_path)
    boxes = _boxes(label_array(labels), prediction_array(predictions), pairs, names, factor)
    draw = ImageDraw.Draw(canvas, "RGBA")  # RGBA: the legend's backdrop is translucent
    _draw_legend(draw, canvas.size, [box.xyxy for box in boxes], pen)  # first: it may hide no box nor tag
    for box in boxes:
        _draw_outline(draw, box, pen)
    for box in boxes:  # after every outline, so no line crosses a tag's text
        _draw_tag(draw, box, pen.font, canvas.size)
    buffer = io.BytesIO()
    canvas.save(buffer, "PNG")
    return buffer.getvalue()


def _pen(long_side: int, font_path: Path | None) -> _Pen:
    thin = max(1, round(long_side / 640))
    size = max(12, round(long_side / 48))
    return _Pen(thin=thin, thick=2 * thin + 1, font=_font(font_path, size),
                legend_font=_font(font_path, max(11, round(size * 0.8))))


def _font(font_path: Path | None, size: int) -> Font:
    if font_path is not None:
        try:
            return ImageFont.truetype(str(font_path), size)
        except OSError:  # an unreadable font costs the overlay its typeface, not the overlay
            pass
    return ImageFont.load_default(size)


def _boxes(labels: np.ndarray, predictions: np.ndarray, pairs: Sequence[Mapping[str, Any]],
           names: Mapping[int, str], factor: int) -> list[_Box]:
    label_kinds: dict[int, str] = {}
    drawn: list[_Box] = []
    for pair in pairs:
        kind = pair["kind"]
        if kind not in OUTCOME_COLOURS:
            raise ValueError(f"unknown pair kind {kind!r}; expected one of {OUTCOMES}")
        if pair.get("label") is not None and kind != "fp":  # a duplicate fp names no label's fate
            label_kinds[int(pair["label"])] = kind
        if pair.get("prediction") is not None:
            cls, conf, *xyxy = predictions[int(pair["prediction"])]
            drawn.append(_Box(_scaled(xyxy, factor), OUTCOME_COLOURS[kind],
                              f"{_name(names, cls)} {conf:.2f} {kind}", prediction=True))
    for index, (cls, *xyxy) in enumerate(labels):
        colour = OUTCOME_COLOURS[label_kinds[index]] if index in label_kinds else UNPAIRED
        drawn.append(_Box(_scaled(xyxy, factor), colour, f"GT {_name(names, cls)}", prediction=False))
    return drawn


def _scaled(xyxy: Sequence[float], factor: int) -> XYXY:
    x1, y1, x2, y2 = (round(float(value) * factor) for value in xyxy)
    return min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)


def _name(names: Mapping[int, str], cls: float) -> str:
    return names.get(int(cls), str(int(cls)))


def _draw_outline(draw: ImageDraw.ImageDraw, box: _Box, pen: _Pen) -> None:
    if box.prediction:
        _dashed_rectangle(draw, box.xyxy, box.colour, pen.thick)
    else:
        draw.rectangle(box.xyxy, outline=box.colour, width=pen.thin)


def _dashed_rectangle(draw: ImageDraw.ImageDraw, xyxy: XYXY, colour: Colour, width: int) -> None:
    x1, y1, x2, y2 = xyxy
    corners = [(x1, y1), (x2, y1), (x2, y2), (x1, y2)]
    for start, end in zip(corners, corners[1:] + corners[:1]):
        _dashed_line(draw, start, end, colour, width)


def _dashed_line(draw: ImageDraw.ImageDraw, start: tuple[int, int], end: tuple[int, int], colour: Colour,
                 width: int) -> None:
    length = math.dist(start, end)
    dash, gap = 3 * width + 2, 2 * width + 2
    for offset in np.arange(0.0, length, dash + gap):
        fractions = offset / length, min(offset + dash, length) / length
        points = [(start[0] + (end[0] - start[0]) * f, start[1] + (end[1] - start[1]) * f) for f in fractions]
        draw.line(points, fill=colour, width=width)


def _draw_tag(draw: ImageDraw.ImageDraw, box: _Box, font: Font, canvas_size: tuple[int, int]) -> None:
    left, top, right, bottom = draw.textbbox((0, 0), box.tag, font=font)
    pad = 2
    width, height = right - left + 2 * pad, bottom - top + 2 * pad
    x1, y1, _, y2 = box.xyxy
    if box.prediction:  # above the box, or just inside it where the image ends
        y = y1 - height if y1 - height >= 0 else y1
    else:  # below the box, or just inside it
        y = y2 if y2 + height <= canvas_size[1] else y2 - height
    x = min(max(x1, 0), max(canvas_size[0] - width, 0))
    draw.rectangle((x, y, x + width - 1, y + height - 1), fill=box.colour)
    draw.text((x + pad - left, y + pad - top), box.tag, fill=_text_colour(box.colour), font=font)


def _text_colour(background: Colour) -> Colour:
    red, green, blue = background
    return (0, 0, 0) if 0.299 * red + 0.587 * green + 0.114 * blue > 128 else (255, 255, 255)


def _draw_legend(draw: ImageDraw.ImageDraw, canvas_size: tuple[int, int], boxes: list[XYXY], pen: _Pen) -> None:
    rows = [*legend_entries(), ("GT", LEGEND_LINES), ("prediction", LEGEND_LINES)]
    _, top, _, bottom = draw.textbbox((0, 0), "Ag", font=pen.legend_font)
    row_height, pad = bottom - top + 4, 4
    sample = 2 * row_height  # the swatch or line sample left of each row's text
    text_width = max(draw.textlength(text, font=pen.legend_font) for text, _ in rows)
    size = (round(sample + text_width) + 3 * pad, row_height * len(rows) + 2 * pad)
    x, y = _legend_corner(canvas_size, size, boxes)
    draw.rectangle((x, y, x + size[0] - 1, y + size[1] - 1), fill=(0, 0, 0, 150))
    for number, (text, colour) in enumerate(rows):
        row_top = y + pad + number * row_height
        middle = row_top + row_height // 2
        if number < len(OUTCOMES):
            draw.rectangle((x + pad, row_top + 2, x + pad + sample, row_top + row_height - 3), fill=colour)
        elif text == "prediction":
            _dashed_line(draw, (x + pad, middle), (x + pad + sample, middle), colour, pen.thick)
        else:
            draw.line(((x + pad, middle), (x + pad + sample, middle)), fill=colour, width=pen.thin)
        draw.text((x + 2 * pad + sample, row_top + 2 - top), text, fill=LEGEND_LINES, font=pen.legend_font)


def _legend_corner(canvas_size: tuple[int, int], size: tuple[int, int], boxes: list[XYXY]) -> tuple[int, int]:
    margin = 4
    right, lower = max(canvas_size[0] - size[0] - margin, 0), max(canvas_size[1] - size[1] - margin, 0)
    corners = [(margin, margin), (right, margin), (margin, lower), (right, lower)]
    return min(corners, key=lambda corner: sum(_overlap((*corner, corner[0] + size[0], corner[1] + size[1]), box)
                                               for box in boxes))


def _overlap(a: XYXY, b: XYXY) -> int:
    return max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))
