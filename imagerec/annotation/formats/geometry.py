"""Geometry the formats share: an instance's extent when its box was not asked for, polygon areas, keypoint counts."""

from __future__ import annotations

from imagerec.annotation.schemas import ImageAnnotations, Instance


def instance_xyxy(instance: Instance) -> tuple[float, float, float, float] | None:
    """The instance's box, or the extent of its polygons or keypoints (shapes=[polygon] drops the box)."""
    if instance.box is not None:
        return instance.box.x1, instance.box.y1, instance.box.x2, instance.box.y2
    points = [p for polygon in instance.polygons or [] for p in polygon]
    points += [[k.x, k.y] for k in instance.keypoints or []]
    if not points:
        return None
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return min(xs), min(ys), max(xs), max(ys)


def polygon_area(points: list[list[float]]) -> float:
    """Shoelace area in square pixels."""
    twice = sum(x1 * y2 - x2 * y1 for (x1, y1), (x2, y2) in zip(points, points[1:] + points[:1]))
    return abs(twice) / 2


def keypoint_count(images: list[ImageAnnotations]) -> int:
    """Keypoints per instance as far as the output shows (dropped trailing keypoints make this a lower bound)."""
    return max((k.index + 1 for image in images for i in image.instances for k in i.keypoints or []), default=0)


def keypoint_names(images: list[ImageAnnotations], count: int) -> list[str]:
    """The model's keypoint names where the output carries them, else kp0, kp1, …"""
    names = {k.index: k.name for image in images for i in image.instances for k in i.keypoints or [] if k.name}
    return [names.get(index, f"kp{index}") for index in range(count)]
