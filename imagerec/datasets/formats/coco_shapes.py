"""COCO's values as plain data: boxes, polygon parts, RLE masks, keypoints, and keypoint names' flip pairs.

Pure functions for ``coco``: each takes a value as it stands in a user's JSON (anything at all) and answers
None or an empty list when the value is not of the expected shape, so the caller counts and skips it. Pixel
coordinates in, pixel coordinates out, except ``keypoints``, which normalises.
"""

from __future__ import annotations

import re

from pycocotools import mask as mask_api

from imagerec.annotation.formats.geometry import polygon_area
from imagerec.datasets.formats import brush
from imagerec.datasets.formats.base import clip_unit

Points = list[tuple[float, float]]
EDGE = 1e-3  # pixels: a coordinate this far outside the image is rounding, not an object off the image


def number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def scalar(value: object) -> bool:
    """An id: a number or a string (JSON's true is no id, though Python takes it for 1)."""
    return isinstance(value, (int, float, str)) and not isinstance(value, bool)


def id_order(value: object) -> tuple:
    """Sorts ids numerically, any string ids after the numbers."""
    return (0, value, "") if number(value) else (1, 0, str(value))


def bbox_corners(raw: object) -> tuple[float, float, float, float] | None:
    """``[x, y, w, h]`` as pixel corners; None unless four numbers with a positive width and height."""
    if not isinstance(raw, list) or len(raw) != 4 or not all(number(value) for value in raw):
        return None
    x, y, w, h = raw
    return (x, y, x + w, y + h) if w > 0 and h > 0 else None


def polygon_parts(raw: object) -> list[Points]:
    """The parts of a polygon segmentation (a list of flat lists, or one flat list as some tools write it)."""
    if not isinstance(raw, list) or not raw:
        return []
    parts = [_pairs(part) for part in ([raw] if all(number(value) for value in raw) else raw)]
    return [part for part in parts if len(part) >= 3]


def largest(parts: list[Points]) -> Points:
    return max(parts, key=lambda part: polygon_area([list(point) for point in part]))


def _pairs(part: object) -> Points:
    if not isinstance(part, list) or len(part) % 2 or not all(number(value) for value in part):
        return []
    return list(zip(part[0::2], part[1::2]))


def rle_outline(raw: dict, *, width: int, height: int) -> Points | None:
    """The outline of an RLE mask's largest part; None when it is not an RLE of the image's size."""
    counts, size = raw.get("counts"), raw.get("size")
    # the mask is allocated at the RLE's size: it must be the image's (and not absurd) before pycocotools sees it
    if size != [height, width] or width * height > brush.MAX_PIXELS:
        return None
    try:
        if isinstance(counts, list) and all(isinstance(count, int) and count >= 0 for count in counts):
            rle = mask_api.frPyObjects({"counts": counts, "size": [height, width]}, height, width)
        elif isinstance(counts, str):
            rle = {"counts": counts.encode("ascii"), "size": [height, width]}
        else:
            return None
        return brush.largest_contour(mask_api.decode(rle))
    except (ValueError, TypeError, UnicodeEncodeError):  # pycocotools refuses counts that do not fill the mask
        return None


def keypoints(raw: object, *, kpt_shape: list[int], width: int, height: int) -> tuple[float, ...] | None:
    """Normalised YOLO keypoints; an absent or empty list is K unlabelled ones; None when malformed."""
    count, dims = kpt_shape
    if raw is None or raw == []:
        return (0.0,) * (count * dims)
    if not isinstance(raw, list) or len(raw) != 3 * count or not all(number(value) for value in raw):
        return None
    values: list[float] = []
    for x, y, visibility in zip(raw[0::3], raw[1::3], raw[2::3]):
        kept = visibility > 0
        values += [clip_unit(x / width), clip_unit(y / height)] if kept else [0.0, 0.0]
        if dims == 3:
            values.append(float(visibility) if kept else 0.0)
    return tuple(values)


def normalised(points: Points, *, width: int, height: int) -> tuple[float, ...]:
    return tuple(value for x, y in points for value in (clip_unit(x / width), clip_unit(y / height)))


def labelled_points(raw: object) -> Points:
    if not isinstance(raw, list):
        return []
    return [(x, y) for x, y, visibility in zip(raw[0::3], raw[1::3], raw[2::3]) if visibility > 0]


def extent(points: Points) -> tuple[float, float, float, float]:
    xs, ys = [x for x, _ in points], [y for _, y in points]
    return min(xs), min(ys), max(xs), max(ys)


def outside(points: Points, *, width: int, height: int) -> bool:
    return any(x < -EDGE or y < -EDGE or x > width + EDGE or y > height + EDGE for x, y in points)


def flip_from_names(names: list[str]) -> list[int] | None:
    """Names that differ by left/right swap places; None when no name has a partner (no flip to derive)."""
    index = {name: position for position, name in enumerate(names)}
    flip = [index.get(_mirror(name), position) for position, name in enumerate(names)]
    if flip == list(range(len(names))) or sorted(flip) != list(range(len(names))):
        return None
    return flip


def _mirror(name: str) -> str:
    swap = {"left": "right", "right": "left"}
    return re.sub(r"(?i)left|right", lambda match: _same_case(swap[match.group(0).lower()], match.group(0)), name)


def _same_case(word: str, like: str) -> str:
    return word.upper() if like.isupper() else word.capitalize() if like[0].isupper() else word
