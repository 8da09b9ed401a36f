"""Interactive pre-annotation: Label Studio sends what the user just clicked or drew as the predict call's
``params.context`` (``{"result": [{"type": "keypointlabels", "value": {"x": …, "y": …}, …}]}``, percent
coordinates), and wants the predictions for that object, not the whole image's.

A click keeps the instances whose box contains it; a drawn rectangle keeps those whose box overlaps it with IoU
of at least ``MIN_IOU``. Several clicks and boxes keep what any of them keeps. A context with neither (or none)
changes nothing, and classification labels are never filtered.
"""

from __future__ import annotations

from imagerec.annotation.schemas import Box, ImageAnnotations

MIN_IOU = 0.1
Point = tuple[float, float]
Corners = tuple[float, float, float, float]


def prompts(context: object) -> tuple[list[Point], list[Corners]]:
    """The clicks and boxes of a context, normalised to 0..1; malformed entries are ignored."""
    clicks, boxes = [], []
    results = context.get("result") if isinstance(context, dict) else None
    for entry in results if isinstance(results, list) else []:
        value = entry.get("value") if isinstance(entry, dict) else None
        if not isinstance(value, dict) or not _numbers(value, "x", "y"):
            continue
        x, y = value["x"] / 100, value["y"] / 100
        kind = str(entry.get("type", "")).lower()
        if kind == "rectanglelabels" or (_numbers(value, "width", "height") and kind != "keypointlabels"):
            if _numbers(value, "width", "height"):
                boxes.append((x, y, x + value["width"] / 100, y + value["height"] / 100))
        else:
            clicks.append((x, y))
    return clicks, boxes


def focus(annotations: ImageAnnotations, context: object) -> ImageAnnotations:
    clicks, boxes = prompts(context)
    if not clicks and not boxes:
        return annotations
    kept = [instance for instance in annotations.instances if instance.box is not None
            and (any(_contains(instance.box, click) for click in clicks)
                 or any(_iou(_corners(instance.box), box) >= MIN_IOU for box in boxes))]
    return annotations.model_copy(update={"instances": kept})


def _numbers(value: dict, *keys: str) -> bool:
    return all(type(value.get(key)) in (int, float) for key in keys)


def _corners(box: Box) -> Corners:
    return box.cx - box.w / 2, box.cy - box.h / 2, box.cx + box.w / 2, box.cy + box.h / 2


def _contains(box: Box, point: Point) -> bool:
    left, top, right, bottom = _corners(box)
    return left <= point[0] <= right and top <= point[1] <= bottom


def _iou(a: Corners, b: Corners) -> float:
    inter = max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0
