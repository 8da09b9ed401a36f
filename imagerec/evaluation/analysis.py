"""The per-image analysis of one evaluation, computed once in the child from what the validator captured.

Each image becomes a row: its five counts at the operating point (``matching``), the same per class (by name),
its worst error's confidence, and what the overlay draws (its labels, the predictions above the operating
confidence, and the pairs). Likely label errors (``label_issues``) use every captured prediction, down to
``validate.CAPTURE_FLOOR``. Images are numbered in path order, so two evaluations of one split share image ids.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from imagerec.evaluation.label_issues import find_classification_label_issues, find_label_issues
from imagerec.evaluation.matching import ImageMatch, match_classification, match_image
from imagerec.evaluation.validate import Captured
from imagerec.vision import VisionTask


def relative_name(path: str, *, files_dir: Path, copy_dir: Path, task: str) -> str:
    """The image's path relative to the dataset's files folder. The evaluation's own copy of a split
    (``data.py``) has the dataset's layout, except classify's "all" copy: ``val/<class>/<split>-<name>``."""
    image = Path(path)
    files_dir = files_dir if image.is_relative_to(files_dir) else files_dir.resolve()  # Ultralytics may resolve
    copy_dir = copy_dir if image.is_relative_to(copy_dir) else copy_dir.resolve()
    if image.is_relative_to(files_dir):
        return str(image.relative_to(files_dir))
    if not image.is_relative_to(copy_dir):
        return image.name
    relative = image.relative_to(copy_dir)
    if task == VisionTask.classify:
        split, _, name = relative.name.partition("-")
        return str(Path(split) / relative.parts[-2] / name)
    return str(relative)


def _rounded(rows: np.ndarray, digits: int = 2) -> list[list[float]]:
    return [[round(float(v), digits) for v in row] for row in rows]


def _detail(labels: np.ndarray, predictions: np.ndarray, match: ImageMatch) -> dict[str, Any]:
    kept = sorted({pair["prediction"] for pair in match.pairs if pair["prediction"] is not None})
    index = {old: new for new, old in enumerate(kept)}
    pairs = [{**pair, "prediction": index.get(pair["prediction"])} for pair in match.pairs]
    return {"labels": _rounded(labels), "predictions": _rounded(predictions[kept], 4) if kept else [],
            "pairs": pairs}


def _row(image_id: int, name: str, match: ImageMatch, names: dict[int, str], detail: dict) -> dict[str, Any]:
    return {"image_id": image_id, "image": name, **match.counts, "errors": match.errors,
            "score": round(float(match.max_error_score), 6),
            "per_class": {names.get(c, str(c)): counts for c, counts in match.per_class.items()}, "detail": detail}


def _name_issues(issues: list[dict], names: dict[int, str], ids: dict[str, int]) -> list[dict]:
    return [{"image": issue["image"], "image_id": ids.get(issue["image"]), "reason": issue["reason"],
             "box": issue["box"], "class_name": names.get(issue["class_id"], str(issue["class_id"])),
             "predicted_class_name": (names.get(issue["predicted_class_id"])
                                      if issue["predicted_class_id"] is not None else None),
             "score": round(float(issue["score"]), 6), "iou": issue["iou"]} for issue in issues]


def analyse(captured: Captured, *, task: str, names: dict[int, str], files_dir: Path, copy_dir: Path, conf: float,
            match_iou: float) -> tuple[list[dict], list[dict]]:
    """(image rows, likely label errors) for one evaluation."""
    named = sorted((relative_name(path, files_dir=files_dir, copy_dir=copy_dir, task=task), seen)
                   for path, seen in captured.images.items())
    ids = {name: image_id for image_id, (name, _) in enumerate(named)}
    rows, inputs = [], []
    for image_id, (name, seen) in enumerate(named):
        if task == VisionTask.classify:
            match = match_classification(seen["label"], seen["top"])
            rows.append(_row(image_id, name, match, names, {"label": seen["label"], "top": seen["top"],
                                                            "pairs": match.pairs}))
            inputs.append({"image": name, "label": seen["label"], "top": seen["top"]})
            continue
        labels, predictions = np.asarray(seen["labels"]), np.asarray(seen["predictions"])
        match = match_image(labels, predictions, conf=conf, iou=match_iou)
        rows.append(_row(image_id, name, match, names, _detail(labels, predictions, match)))
        inputs.append({"image": name, "labels": labels, "predictions": predictions, "match": match})
    if task == VisionTask.classify:
        issues = find_classification_label_issues(inputs)
    else:
        issues = find_label_issues(inputs)
    return rows, _name_issues(issues, names, ids)
