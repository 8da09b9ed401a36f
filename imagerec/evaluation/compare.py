"""Two evaluations of the same images, side by side: per metric and per class, B − A, and where B got worse.

``compare(a, b)`` reads B as the candidate and A as the reference: every delta is B − A. A class "regressed" when
its primary metric (``map50_95`` of the task's main measure: boxes for detect, masks for segment, keypoints for
pose; ``f1`` per class for classify) fell by more than ``threshold``. Images are matched by their path in the
dataset; "worse images" are those where B makes more errors at the operating point than A. Evaluations of
different datasets or splits cannot be compared (422).
"""

from __future__ import annotations

from typing import Any

from imagerec.errors import Unprocessable
from imagerec.evaluation.models import Evaluation, EvaluationImage

WORSE_IMAGES_LIMIT = 100
CLASSIFY_CLASS_METRIC = "f1"


def _delta(a: float | None, b: float | None) -> dict[str, float | None]:
    delta = round(b - a, 6) if a is not None and b is not None else None
    return {"a": a, "b": b, "delta": delta}


def _overall(a: dict, b: dict) -> dict[str, Any]:
    out = {}
    for kind, values in b["overall"].items():
        if isinstance(values, dict):
            out[kind] = {name: _delta(a["overall"].get(kind, {}).get(name), value) for name, value in values.items()}
        else:
            out[kind] = _delta(a["overall"].get(kind), values)
    return out


def class_metric(metrics: dict, row: dict, metric: str) -> float | None:
    """A per-class row's value of ``metric`` for the task's primary measure."""
    if metrics["primary"] == "classify":
        return row.get(metric if metric in row else CLASSIFY_CLASS_METRIC)
    return row.get(metrics["primary"], {}).get(metric)


def _per_class(a: dict, b: dict, *, metric: str, threshold: float) -> tuple[list[dict], list[dict]]:
    rows_a = {row["class"]: row for row in a["per_class"]}
    rows, regressed = [], []
    for row_b in b["per_class"]:
        row_a = rows_a.get(row_b["class"])
        value_a = class_metric(a, row_a, metric) if row_a else None
        value_b = class_metric(b, row_b, metric)
        entry = {"class": row_b["class"], metric: _delta(value_a, value_b)}
        for kind in ("box", "mask", "pose"):
            if kind in row_b:
                entry[kind] = {name: _delta((row_a or {}).get(kind, {}).get(name), value)
                               for name, value in row_b[kind].items()}
        rows.append(entry)
        delta = entry[metric]["delta"]
        if delta is not None and delta < -threshold:
            regressed.append({"class": row_b["class"], "metric": metric, **entry[metric]})
    return rows, sorted(regressed, key=lambda item: item["delta"])


def _worse_images(images_a: dict[str, EvaluationImage], images_b: dict[str, EvaluationImage]) -> list[dict]:
    worse = [{"image": name, "image_id": row_b.image_id, "errors_a": images_a[name].errors,
              "errors_b": row_b.errors}
             for name, row_b in images_b.items() if name in images_a and row_b.errors > images_a[name].errors]
    worse.sort(key=lambda item: (item["errors_a"] - item["errors_b"], item["image"]))
    return worse[:WORSE_IMAGES_LIMIT]


def check_comparable(a: Evaluation, b: Evaluation) -> None:
    for evaluation in (a, b):
        if evaluation.metrics is None:
            raise Unprocessable(f"evaluation {evaluation.id} has no result (it is {evaluation.status})")
    if a.dataset_id != b.dataset_id or a.split != b.split:
        raise Unprocessable(f"evaluations {a.id} and {b.id} are on different images (dataset {a.dataset_id} "
                            f"{a.split} vs dataset {b.dataset_id} {b.split}): only the same images compare")
    if a.vision_task != b.vision_task:
        raise Unprocessable(f"evaluations {a.id} and {b.id} are of different tasks")


def compare(a: Evaluation, b: Evaluation, *, images_a: dict[str, EvaluationImage],
            images_b: dict[str, EvaluationImage], metric: str = "map50_95", threshold: float = 0.02) -> dict:
    check_comparable(a, b)
    per_class, regressed = _per_class(a.metrics, b.metrics, metric=metric, threshold=threshold)
    return {
        "a": {"evaluation_id": a.id, "model_id": a.model_id}, "b": {"evaluation_id": b.id, "model_id": b.model_id},
        "dataset_id": a.dataset_id, "split": a.split, "metric": metric, "threshold": threshold,
        "overall": _overall(a.metrics, b.metrics), "per_class": per_class, "regressed_classes": regressed,
        "worse_images": _worse_images(images_a, images_b) if images_a and images_b else [],
        "per_image": bool(images_a and images_b),
    }
