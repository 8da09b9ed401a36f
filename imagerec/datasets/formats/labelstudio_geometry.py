"""Label Studio regions as geometry: a region's outline in normalised image coordinates.

Label Studio stores percent coordinates with x/y at the top-left; a rotated rectangle turns about its top-left
corner in pixels, so its corners need the image's pixel size, as a brush mask does to be decoded. The size comes
from the regions (``original_width``/``original_height``) when they carry it, else from the image header.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Protocol

from imagerec.datasets.formats import brush
from imagerec.pillow import pillow_open


class Region(Protocol):
    kind: str
    value: dict
    size: tuple[int, int] | None


class Size:
    """The image's pixel size, from the regions when they carry it, else (once) from the image header."""

    def __init__(self, image: Path | None, regions: list[Region]):
        self.image, self.value = image, next((region.size for region in regions if region.size), None)

    def get(self) -> tuple[int, int]:
        if self.value is None:
            with pillow_open()(self.image) as image:
                self.value = image.size
        return self.value


def outline(region: Region, size: Size) -> list[tuple[float, float]] | None:
    """The region's outline in normalised image coordinates (not clipped)."""
    value = region.value
    if region.kind == "polygonlabels":
        points = [(float(x) / 100, float(y) / 100) for x, y in value["points"]]
        return points if len(points) >= 3 else None
    if region.kind == "brushlabels":
        width, height = region.size or size.get()
        contour = brush.largest_contour(brush.decode_mask(value["rle"], width=width, height=height))
        return [(x / width, y / height) for x, y in contour] if contour else None
    return rectangle_corners(value, size)


def rectangle_corners(value: dict, size: Size) -> list[tuple[float, float]]:
    x, y, width, height = (float(value[key]) / 100 for key in ("x", "y", "width", "height"))
    rotation = float(value.get("rotation") or 0)
    if not rotation:
        return [(x, y), (x + width, y), (x + width, y + height), (x, y + height)]
    # the turn is about the top-left corner in pixels: in percent the axes are scaled differently
    image_width, image_height = size.get()
    cos, sin = math.cos(math.radians(rotation)), math.sin(math.radians(rotation))
    corners = [(0.0, 0.0), (width * image_width, 0.0), (width * image_width, height * image_height),
               (0.0, height * image_height)]
    return [(x + (dx * cos - dy * sin) / image_width, y + (dx * sin + dy * cos) / image_height) for dx, dy in corners]
