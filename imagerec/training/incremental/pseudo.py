"""Pseudo-labels: the base model's own predictions of old classes, written into the new images' labels.

New data usually shows old-class objects nobody labelled (the new dataset only knows its own classes). Trained
as they are, those objects would teach the model that an old class is background. So the base model predicts
on each new image, and its confident old-class objects that no human label already covers are added.

Ultralytics is not imported here: ``result`` is duck-typed, so this module loads fast and tests can use fakes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Box = tuple[float, float, float, float]  # normalised x1, y1, x2, y2
KEYPOINT_VISIBLE_CONF = 0.5  # below it a predicted keypoint is written as not visible


@dataclass(frozen=True)
class PseudoLabel:
    class_id: int  # merged id: an old class, since the base model's ids are the old ids
    confidence: float
    box: Box
    line: str  # the YOLO label line to write for the task


# --- existing labels --------------------------------------------------------------------------------------------

def label_boxes(lines: list[str], task: str) -> list[Box]:
    """Normalised xyxy of YOLO label lines: the box columns, or a segment polygon's bounds."""
    if task not in ("detect", "segment", "pose"):
        raise ValueError(f"{task} labels have no boxes")
    boxes = []
    for line in lines:
        values = [float(v) for v in line.split()[1:]]
        if not values:
            continue
        if task == "segment" and len(values) != 4:  # four values are a box, which Ultralytics accepts there too
            xs, ys = values[0::2], values[1::2]
            boxes.append((min(xs), min(ys), max(xs), max(ys)))
        else:
            cx, cy, w, h = values[:4]
            boxes.append((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2))
    return boxes


# --- reading a result -------------------------------------------------------------------------------------------

def from_result(result, task: str) -> list[PseudoLabel]:
    """An Ultralytics ``Results`` of a detect/segment/pose model → one pseudo-label per predicted instance."""
    if task not in _LINE_WRITERS:
        raise ValueError(f"no pseudo-labels for task {task!r}; expected one of {sorted(_LINE_WRITERS)}")
    boxes = result.boxes
    if boxes is None or len(boxes) == 0:
        return []
    xyxyn = np.clip(_numpy(boxes.xyxyn).astype(float), 0.0, 1.0)
    confidences = _numpy(boxes.conf).astype(float)
    class_ids = _numpy(boxes.cls).astype(int)
    write_line = _LINE_WRITERS[task]
    labels = []
    for index, box in enumerate(xyxyn):
        values = write_line(result, index, box)
        if values is not None:
            line = " ".join([str(class_ids[index]), *(_number(v) for v in values)])
            labels.append(PseudoLabel(int(class_ids[index]), float(confidences[index]), tuple(map(float, box)), line))
    return labels


def _box_values(result, index: int, box: np.ndarray) -> list[float]:
    x1, y1, x2, y2 = box
    return [(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1]


def _polygon_values(result, index: int, box: np.ndarray) -> list[float] | None:
    polygon = np.clip(np.asarray(result.masks.xyn[index], dtype=float), 0.0, 1.0)
    if len(polygon) < 3:  # a mask too small to outline: no usable polygon
        return None
    return polygon.reshape(-1).tolist()


def _pose_values(result, index: int, box: np.ndarray) -> list[float]:
    """Box, then x y per keypoint, plus a visibility (2 or 0) when the model predicts keypoint confidence.

    A model without keypoint confidence was trained on ``kpt_shape`` [k, 2] labels, which have no visibility
    column; writing one would make every line the wrong length for that dataset.
    """
    keypoints = result.keypoints
    points = np.clip(_numpy(keypoints.xyn[index]).astype(float), 0.0, 1.0)
    if keypoints.conf is None:
        return _box_values(result, index, box) + points.reshape(-1).tolist()
    visible = _numpy(keypoints.conf[index]) >= KEYPOINT_VISIBLE_CONF
    triples = [[x, y, 2 if seen else 0] for (x, y), seen in zip(points, visible)]
    return _box_values(result, index, box) + [v for triple in triples for v in triple]


_LINE_WRITERS = {"detect": _box_values, "segment": _polygon_values, "pose": _pose_values}


def _number(value: float | int) -> str:
    return str(value) if isinstance(value, int) else f"{value:.6f}"


def _numpy(values) -> np.ndarray:
    return values.cpu().numpy() if hasattr(values, "cpu") else np.asarray(values)


# --- choosing what to keep ----------------------------------------------------------------------------------------

def select_pseudo_labels(candidates: list[PseudoLabel], existing: list[Box], *, old_count: int, conf: float,
                         iou: float = 0.5) -> list[PseudoLabel]:
    """Confident old-class candidates that no existing label covers, most confident first.

    An overlap with any human label drops the candidate whatever that label's class: the human label is the
    truth for that object, and a second box on it would teach a conflicting class. Among themselves, candidates
    are de-duplicated greedily (the more confident wins), as class-agnostic NMS would.
    """
    wanted = [c for c in candidates if 0 <= c.class_id < old_count and c.confidence >= conf]
    wanted.sort(key=lambda c: -c.confidence)
    kept: list[PseudoLabel] = []
    for candidate in wanted:
        if any(box_iou(candidate.box, box) >= iou for box in existing):
            continue
        if any(box_iou(candidate.box, other.box) >= iou for other in kept):
            continue
        kept.append(candidate)
    return kept


def box_iou(a: Box, b: Box) -> float:
    inter_w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    inter_h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = inter_w * inter_h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0
