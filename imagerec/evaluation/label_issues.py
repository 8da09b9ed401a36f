"""Labels that are probably wrong, found where a confident model and the labels disagree (pure numpy).

Rules for detection-style images (``find_label_issues``); ``labels``/``predictions`` must be the arrays the
image's ``match`` was computed from, since its pairs index into them:

- ``missing_label``: a prediction with ``conf >= min_score`` whose IoU with every label, of any class, is below
  ``near_iou``: the model is sure of an object that nobody labelled. Box and classes are the prediction's.
- ``wrong_label``: a ``wrong_class`` pair of the match with ``score >= min_score``: the model is sure a labelled
  object is another class. Box and ``class_id`` are the label's, ``predicted_class_id`` the model's.
- ``spurious_label``: a label that no prediction overlaps at IoU >= ``near_iou``, whatever its confidence or class.
  The predictions include the low-confidence ones, so nothing at all there is strong evidence that the label is
  not an object. ``score`` is 1 - the highest conf of any prediction touching the label (IoU > 0), 1.0 when none
  does, so a label that a confident box grazes ranks low. ``min_score`` does not apply to this reason.
- ``iou``: the pair's IoU for wrong_label; for the other two the highest IoU with any box on the other side
  (below ``near_iou`` by definition), None when that side is empty.

Classification (``find_classification_label_issues``) has one reason: a top-1 of another class than the label with
``prob >= min_score`` is a ``wrong_label`` with no box.

Issues are ranked by score, highest first, then by image name, and cut at ``limit``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from imagerec.evaluation.matching import box_iou, label_array, prediction_array

REASONS = ("missing_label", "wrong_label", "spurious_label")


def find_label_issues(images: Iterable[dict[str, Any]], *, min_score: float = 0.5, near_iou: float = 0.1,
                      limit: int = 500) -> list[dict]:
    """The likely label issues of detection images ``{"image", "labels", "predictions", "match"}``, ranked."""
    issues: list[dict] = []
    for image in images:
        labels, predictions = label_array(image["labels"]), prediction_array(image["predictions"])
        ious = box_iou(predictions[:, 2:], labels[:, 1:])  # (predictions, labels)
        issues += _missing_labels(image["image"], predictions, ious, min_score=min_score, near_iou=near_iou)
        issues += _wrong_labels(image["image"], labels, image["match"].pairs, min_score=min_score)
        issues += _spurious_labels(image["image"], labels, predictions, ious, near_iou=near_iou)
    return _ranked(issues, limit)


def find_classification_label_issues(images: Iterable[dict[str, Any]], *, min_score: float = 0.5,
                                     limit: int = 500) -> list[dict]:
    """The likely label issues of classified images ``{"image", "label", "top": [(class, prob), ...]}``, ranked."""
    issues = []
    for image in images:
        if not image["top"]:
            continue
        class_id, prob = int(image["top"][0][0]), float(image["top"][0][1])
        if class_id != int(image["label"]) and prob >= min_score:
            issues.append(_issue(image["image"], "wrong_label", box=None, class_id=int(image["label"]),
                                 predicted_class_id=class_id, score=prob, iou=None))
    return _ranked(issues, limit)


def _missing_labels(image: str, predictions: np.ndarray, ious: np.ndarray, *, min_score: float,
                    near_iou: float) -> list[dict]:
    nearest_label = ious.max(axis=1, initial=0.0)
    lonely = (predictions[:, 1] >= min_score) & (nearest_label < near_iou)
    return [_issue(image, "missing_label", box=predictions[index, 2:], class_id=int(predictions[index, 0]),
                   predicted_class_id=int(predictions[index, 0]), score=float(predictions[index, 1]),
                   iou=float(nearest_label[index]) if ious.shape[1] else None)
            for index in np.flatnonzero(lonely)]


def _wrong_labels(image: str, labels: np.ndarray, pairs: list[dict], *, min_score: float) -> list[dict]:
    return [_issue(image, "wrong_label", box=labels[pair["label"], 1:], class_id=pair["label_class_id"],
                   predicted_class_id=pair["class_id"], score=pair["score"], iou=pair["iou"])
            for pair in pairs if pair["kind"] == "wrong_class" and pair["score"] >= min_score]


def _spurious_labels(image: str, labels: np.ndarray, predictions: np.ndarray, ious: np.ndarray, *,
                     near_iou: float) -> list[dict]:
    nearest_prediction = ious.max(axis=0, initial=0.0)
    touching_conf = np.where(ious > 0, predictions[:, 1:2], 0.0).max(axis=0, initial=0.0)
    return [_issue(image, "spurious_label", box=labels[index, 1:], class_id=int(labels[index, 0]),
                   predicted_class_id=None, score=1.0 - float(touching_conf[index]),
                   iou=float(nearest_prediction[index]) if ious.shape[0] else None)
            for index in np.flatnonzero(nearest_prediction < near_iou)]


def _issue(image: str, reason: str, *, box: np.ndarray | None, class_id: int, predicted_class_id: int | None,
           score: float, iou: float | None) -> dict:
    return {"image": image, "reason": reason, "box": None if box is None else [float(value) for value in box],
            "class_id": class_id, "predicted_class_id": predicted_class_id, "score": score, "iou": iou}


def _ranked(issues: list[dict], limit: int) -> list[dict]:
    return sorted(issues, key=lambda issue: (-issue["score"], issue["image"]))[:max(limit, 0)]
