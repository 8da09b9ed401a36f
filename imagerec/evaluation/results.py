"""Ultralytics' metrics object turned into the evaluation's stored result (plain JSON).

Shape, for detect / segment / pose::

    {"primary": "box" | "mask" | "pose", "conf": 0.25,
     "overall": {"box": {"precision", "recall", "f1", "map50", "map50_95"}, "mask": {…}},
     "per_class": [{"class": name, "images", "instances", "box": {…}, "mask": {…}}],
     "confusion": {"names": [..., "background"], "counts": [[…]], "normalized": [[…]]},
     "curves": {"box": {"pr": {"x", "xlabel", "ylabel", "series": {"all": [...], name: [...]}}, "f1_conf", …}},
     "speed": {"preprocess", "inference", "postprocess"}}

and for classify ``overall`` is ``{"top1", "top5"}`` and ``per_class`` rows hold precision, recall, f1 and
support. mAP is Ultralytics' own. Precision, recall and F1 are read off Ultralytics' confidence curves at the
operating ``conf`` (its printed P and R are at the confidence of best F1 instead). The confusion matrix is
``[predicted][true]`` as Ultralytics counts it, at the confidence and IoU in ``counted_at``; ``normalized``
divides each true column by its total. Curves are
resampled to ``CURVE_POINTS`` points.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from imagerec.vision import VisionTask

CURVE_POINTS = 101
KINDS = {VisionTask.detect: ["box"], VisionTask.segment: ["box", "mask"], VisionTask.pose: ["box", "pose"]}
ATTRIBUTE = {"box": "box", "mask": "seg", "pose": "pose"}
PRIMARY = {VisionTask.detect: "box", VisionTask.segment: "mask", VisionTask.pose: "pose"}
CURVE_NAMES = ("pr", "f1_conf", "p_conf", "r_conf")


def _r(value: float) -> float:
    return round(float(value), 6)


def _at_conf(curve: np.ndarray, conf: float) -> np.ndarray:
    """Per-class values of a confidence curve (rows over 0..1 in 1000 steps) at ``conf``."""
    if not len(curve):
        return np.zeros(0)
    index = int(round(conf * (curve.shape[1] - 1)))
    return np.asarray(curve)[:, index]


def _operating_point(metric, conf: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    precision = _at_conf(np.asarray(metric.p_curve), conf)
    recall = _at_conf(np.asarray(metric.r_curve), conf)
    f1 = _at_conf(np.asarray(metric.f1_curve), conf)
    return precision, recall, f1


def _mean(values: np.ndarray) -> float:
    return _r(values.mean()) if len(values) else 0.0


def _kind_overall(metric, conf: float) -> dict[str, float]:
    precision, recall, f1 = _operating_point(metric, conf)
    return {"precision": _mean(precision), "recall": _mean(recall), "f1": _mean(f1), "map50": _r(metric.map50),
            "map50_95": _r(metric.map)}


def _kind_per_class(metric, conf: float) -> dict[int, dict[str, float]]:
    precision, recall, f1 = _operating_point(metric, conf)
    all_ap = np.asarray(metric.all_ap)
    return {int(c): {"precision": _r(precision[i]), "recall": _r(recall[i]), "f1": _r(f1[i]),
                     "map50": _r(all_ap[i, 0]), "map50_95": _r(all_ap[i].mean())}
            for i, c in enumerate(metric.ap_class_index)}


def _curves(metric, names: dict[int, str]) -> dict[str, Any]:
    curves = {}
    present = [names[int(c)] for c in metric.ap_class_index]
    for key, (x, y, xlabel, ylabel) in zip(CURVE_NAMES, metric.curves_results):
        x, y = np.asarray(x), np.asarray(y)
        if y.ndim != 2 or not y.shape[0]:
            continue
        sample = np.linspace(0, len(x) - 1, CURVE_POINTS).round().astype(int)
        series = {"all": [_r(v) for v in y.mean(0)[sample]]}
        series.update({name: [_r(v) for v in y[i][sample]] for i, name in enumerate(present)})
        curves[key] = {"x": [_r(v) for v in x[sample]], "xlabel": xlabel, "ylabel": ylabel, "series": series}
    return curves


def _confusion(matrix: np.ndarray, names: list[str], counted_at: dict | None) -> dict[str, Any]:
    totals = matrix.sum(0, keepdims=True)
    normalized = np.divide(matrix, totals, out=np.zeros_like(matrix, dtype=float), where=totals > 0)
    return {"names": names, "axes": "[predicted][true]", "counted_at": counted_at,
            "counts": matrix.astype(int).tolist(), "normalized": [[_r(v) for v in row] for row in normalized]}


def _speed(metrics) -> dict[str, float]:
    return {key: _r(value) for key, value in metrics.speed.items() if key != "loss"}


def detection_result(metrics, *, task: str, names: dict[int, str], conf: float,
                     confusion_at: dict | None) -> dict[str, Any]:
    kinds = KINDS[VisionTask(task)]
    objects = {kind: getattr(metrics, ATTRIBUTE[kind]) for kind in kinds}
    per_kind = {kind: _kind_per_class(metric, conf) for kind, metric in objects.items()}
    nt_class, nt_image = np.asarray(metrics.nt_per_class), np.asarray(metrics.nt_per_image)
    per_class = [{"class": names[c], "class_id": c, "images": int(nt_image[c]), "instances": int(nt_class[c]),
                  **{kind: per_kind[kind][c] for kind in kinds}}
                 for c in sorted(per_kind[kinds[0]])]
    matrix = np.asarray(metrics.confusion_matrix.matrix)
    return {
        "primary": PRIMARY[VisionTask(task)], "conf": conf,
        "overall": {kind: _kind_overall(metric, conf) for kind, metric in objects.items()},
        "per_class": per_class,
        "confusion": _confusion(matrix, [*names.values(), "background"], confusion_at),
        "curves": {kind: _curves(metric, names) for kind, metric in objects.items()},
        "speed": _speed(metrics),
    }


def classification_result(metrics, *, names: dict[int, str], conf: float) -> dict[str, Any]:
    matrix = np.asarray(metrics.confusion_matrix.matrix)  # [predicted][true]
    diagonal, predicted, true = np.diag(matrix), matrix.sum(1), matrix.sum(0)
    per_class = []
    for c, name in names.items():
        precision = diagonal[c] / predicted[c] if predicted[c] else 0.0
        recall = diagonal[c] / true[c] if true[c] else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        if true[c] or predicted[c]:
            per_class.append({"class": name, "class_id": c, "support": int(true[c]), "precision": _r(precision),
                              "recall": _r(recall), "f1": _r(f1)})
    return {"primary": "classify", "conf": conf, "overall": {"top1": _r(metrics.top1), "top5": _r(metrics.top5)},
            "per_class": per_class, "confusion": _confusion(matrix, list(names.values()), None), "curves": {},
            "speed": _speed(metrics)}


def result(metrics, *, task: str, names: dict[int, str], conf: float,
           confusion_at: dict | None = None) -> dict[str, Any]:
    """``confusion_at``: the ``{"conf", "iou"}`` the detection confusion matrix was counted at (the operating
    point for an evaluation; Ultralytics' own 0.001 and 0.45 in a training's validation)."""
    if task == VisionTask.classify:
        return classification_result(metrics, names=names, conf=conf)
    return detection_result(metrics, task=task, names=names, conf=conf, confusion_at=confusion_at)
