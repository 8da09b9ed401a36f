"""One image's predictions matched to its labels, for the per-image analysis of an evaluation (pure numpy).

Rules:

- Coordinates are original image pixels. Labels are rows ``[cls, x1, y1, x2, y2]``; predictions are rows
  ``[cls, conf, x1, y1, x2, y2]``; class ids are the model's.
- Only predictions with ``conf >= conf`` take part, highest confidence first (equal confidences keep input order).
  As in COCO the matching is greedy: each prediction takes the best still-unmatched label, and a label once
  taken is gone for the rest of the image.
- A prediction's outcome is the first of these that applies:

  ``tp``            an unmatched label of its class at IoU >= ``iou`` (the one with the highest IoU is taken);
  ``fp``            a duplicate: a label of its class at IoU >= ``iou`` exists but is already taken (takes nothing,
                    as in COCO, so a duplicate never turns into a wrong_class on a neighbouring label);
  ``wrong_class``   an unmatched label of another class at IoU >= ``iou`` (taken);
  ``localisation``  an unmatched label of its class at IoU in [``localisation_floor``, ``iou``) (taken);
  ``fp``            anything else (takes nothing).

  Labels never taken are ``fn``.
- Per class, tp, fp and localisation count for the predicted class; wrong_class and fn for the label's class.
- ``pairs`` lists the predictions in matching order, then the fn labels in label order. ``iou`` is the IoU with the
  taken label; ``label_class_id`` is the class of the label in ``label`` (for fn: the label itself).
- Classification has one label per image and no boxes: a top-1 of the label's class is tp, any other top-1 is
  wrong_class (counted for the label's class).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

OUTCOMES = ("tp", "fp", "fn", "wrong_class", "localisation")
ERROR_OUTCOMES = ("fp", "fn", "wrong_class", "localisation")
SCORED_ERRORS = ("fp", "wrong_class", "localisation")  # the error outcomes that come from a prediction


@dataclass(frozen=True)
class ImageMatch:
    counts: dict[str, int]  # outcome -> number in the image
    per_class: dict[int, dict[str, int]]  # class id -> outcome -> number (only classes with at least one)
    pairs: list[dict]  # one per prediction above conf and one per fn label
    errors: int  # fp + fn + wrong_class + localisation
    max_error_score: float  # highest conf among the fp/wrong_class/localisation predictions, 0.0 if none


def label_array(labels: ArrayLike) -> np.ndarray:
    """``labels`` as an (N, 5) float array; any empty input gives (0, 5)."""
    return _rows(labels, width=5, what="labels")


def prediction_array(predictions: ArrayLike) -> np.ndarray:
    """``predictions`` as an (M, 6) float array; any empty input gives (0, 6)."""
    return _rows(predictions, width=6, what="predictions")


def _rows(values: ArrayLike, *, width: int, what: str) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.size == 0:
        return np.zeros((0, width))
    if array.ndim != 2 or array.shape[1] != width:  # a reshape would silently regroup the numbers
        raise ValueError(f"{what} must have shape (n, {width}), got {array.shape}")
    return array


def box_iou(boxes_a: ArrayLike, boxes_b: ArrayLike) -> np.ndarray:
    """The (N, M) IoU of ``[x1, y1, x2, y2]`` boxes; 0 where both boxes have no area."""
    a, b = _rows(boxes_a, width=4, what="boxes"), _rows(boxes_b, width=4, what="boxes")
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    intersection = np.clip(bottom_right - top_left, 0, None).prod(axis=2)
    union = _area(a)[:, None] + _area(b)[None, :] - intersection
    return np.divide(intersection, union, out=np.zeros_like(intersection), where=union > 0)


def _area(boxes: np.ndarray) -> np.ndarray:
    return np.clip(boxes[:, 2:] - boxes[:, :2], 0, None).prod(axis=1)


def match_image(labels: ArrayLike, predictions: ArrayLike, *, conf: float, iou: float,
                localisation_floor: float = 0.1) -> ImageMatch:
    """Match one image's predictions (those with ``conf >= conf``) to its labels; see the module rules."""
    label_rows, prediction_rows = label_array(labels), prediction_array(predictions)
    kept = np.flatnonzero(prediction_rows[:, 1] >= conf)
    order = kept[np.argsort(-prediction_rows[kept, 1], kind="stable")]
    ious = box_iou(prediction_rows[order, 2:], label_rows[:, 1:])
    matcher = _GreedyMatcher(label_rows[:, 0].astype(int), iou=iou, localisation_floor=localisation_floor)
    pairs = [matcher.offer(prediction=int(index), row=prediction_rows[index], ious=ious[rank])
             for rank, index in enumerate(order)]
    return _summarise(pairs + matcher.unmatched())


class _GreedyMatcher:
    """One image's labels, taken one by one by the predictions offered to it, highest confidence first."""

    def __init__(self, label_classes: np.ndarray, *, iou: float, localisation_floor: float) -> None:
        self.label_classes = label_classes
        self.taken = np.zeros(len(label_classes), dtype=bool)
        self.iou = iou
        self.localisation_floor = localisation_floor

    def offer(self, *, prediction: int, row: np.ndarray, ious: np.ndarray) -> dict:
        class_id = int(row[0])
        kind, label = self._outcome(self.label_classes == class_id, ious)
        if label is not None:
            self.taken[label] = True
        return _pair(kind, label=label, prediction=prediction, iou=None if label is None else float(ious[label]),
                     score=float(row[1]), class_id=class_id,
                     label_class_id=None if label is None else int(self.label_classes[label]))

    def _outcome(self, same_class: np.ndarray, ious: np.ndarray) -> tuple[str, int | None]:
        free, close = ~self.taken, ious >= self.iou
        rules = (
            ("tp", same_class & free & close),
            ("fp", same_class & close),  # a duplicate of a label already found
            ("wrong_class", ~same_class & free & close),
            ("localisation", same_class & free & (ious >= self.localisation_floor)),
        )
        for kind, candidates in rules:
            if candidates.any():
                return kind, None if kind == "fp" else int(np.argmax(np.where(candidates, ious, -1.0)))
        return "fp", None

    def unmatched(self) -> list[dict]:
        return [_pair("fn", label=int(label), prediction=None, iou=None, score=None,
                      class_id=int(self.label_classes[label]), label_class_id=int(self.label_classes[label]))
                for label in np.flatnonzero(~self.taken)]


def match_classification(label: int, top: list[tuple[int, float]]) -> ImageMatch:
    """Score one classified image from its top-k ``(class, prob)`` list, highest first; an empty list is fn."""
    label = int(label)
    if not top:
        return _summarise([_pair("fn", label=0, prediction=None, iou=None, score=None, class_id=label,
                                 label_class_id=label)])
    class_id, prob = int(top[0][0]), float(top[0][1])
    kind = "tp" if class_id == label else "wrong_class"
    return _summarise([_pair(kind, label=0, prediction=0, iou=None, score=prob, class_id=class_id,
                             label_class_id=label)])


def _pair(kind: str, *, label: int | None, prediction: int | None, iou: float | None, score: float | None,
          class_id: int, label_class_id: int | None) -> dict:
    return {"kind": kind, "label": label, "prediction": prediction, "iou": iou, "score": score,
            "class_id": class_id, "label_class_id": label_class_id}


def _summarise(pairs: list[dict]) -> ImageMatch:
    counts = dict.fromkeys(OUTCOMES, 0)
    per_class: dict[int, dict[str, int]] = {}
    for pair in pairs:
        owner = pair["label_class_id"] if pair["kind"] == "wrong_class" else pair["class_id"]
        counts[pair["kind"]] += 1
        per_class.setdefault(owner, dict.fromkeys(OUTCOMES, 0))[pair["kind"]] += 1
    error_scores = [pair["score"] for pair in pairs if pair["kind"] in SCORED_ERRORS]
    return ImageMatch(counts=counts, per_class=dict(sorted(per_class.items())), pairs=pairs,
                      errors=sum(counts[kind] for kind in ERROR_OUTCOMES),
                      max_error_score=max(error_scores, default=0.0))
