"""The incremental report: the new model on the old classes (the replay sources' val images), on the new classes
(the new dataset's val images) and overall, next to the base model measured the same way, and retention.

Old-class figures come only from the old val images and new-class figures only from the new ones: new images
usually leave old-class objects unlabelled, so counting old classes there would punish correct detections.
"Overall" is the mean over every class of those per-class figures. Detection, segmentation and pose use the
task's own metric (boxes, masks, keypoints); classification uses top-1 accuracy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from imagerec.evaluation.validate import validate
from imagerec.training.context import RunContext
from imagerec.training.devices import first_device
from imagerec.training.incremental.classes import ClassMerge
from imagerec.vision import VisionTask

TASK_METRIC = {VisionTask.detect: "box", VisionTask.segment: "seg", VisionTask.pose: "pose"}


def per_class_ap(weights: Path, data_yaml: Path, *, task: str, imgsz: int, batch: int, device: str,
                 project: Path) -> dict[int, tuple[float, float]]:
    """class id → (mAP50-95, mAP50) on the YAML's val images, for the classes that have labels there."""
    metrics = validate(weights, data=str(data_yaml), task=task, imgsz=imgsz, batch=batch, device=device,
                       project=project, name=f"eval-{data_yaml.stem}")
    metric = getattr(metrics, TASK_METRIC[VisionTask(task)])
    all_ap = np.asarray(metric.all_ap)
    return {int(c): (float(all_ap[i].mean()), float(all_ap[i, 0])) for i, c in enumerate(metric.ap_class_index)}


def _per_class(ctx: RunContext, weights: Path, data_yaml: Path) -> dict[int, tuple[float, float]]:
    return per_class_ap(weights, data_yaml, task=ctx.task, imgsz=ctx.params["imgsz"], batch=ctx.params["batch"],
                        device=first_device(ctx.params["device"]), project=ctx.run_dir)


def _mean(values: list[tuple[float, float]]) -> dict[str, float] | None:
    if not values:
        return None
    return {"map50_95": float(np.mean([v[0] for v in values])), "map50": float(np.mean([v[1] for v in values]))}


def _retention(new: dict | None, base: dict | None, key: str) -> float | None:
    if not new or not base or not base.get(key):
        return None
    return new[key] / base[key]


def _detection_report(ctx: RunContext, merge: ClassMerge, data_root: Path, weights: Path) -> dict[str, Any]:
    new_classes = [c for c in range(merge.old_count, len(merge.names))] or list(range(len(merge.names)))
    on_new = _per_class(ctx, weights, data_root / "eval-new.yaml")
    new_part = {c: v for c, v in on_new.items() if c in new_classes}
    old_part: dict[int, tuple[float, float]] = {}
    base_old: dict[int, tuple[float, float]] = {}
    if (data_root / "eval-old.yaml").is_file():
        old_part = {c: v for c, v in _per_class(ctx, weights, data_root / "eval-old.yaml").items()
                    if c < merge.old_count}
        base_old = {c: v for c, v in _per_class(ctx, ctx.base_model.weights_path, data_root / "eval-old.yaml").items()
                    if c < merge.old_count}
    overall = list(old_part.values()) + [v for c, v in new_part.items() if c not in old_part]
    report = {
        "metric": TASK_METRIC[VisionTask(ctx.task)],
        "old_classes": _mean(list(old_part.values())),
        "new_classes": _mean(list(new_part.values())),
        "overall": _mean(overall),
        "base_old_classes": _mean(list(base_old.values())),
        "per_class": {merge.names[c]: {"map50_95": v[0], "map50": v[1]}
                      for c, v in sorted({**new_part, **old_part}.items())},
        "new_classes_measured": "added classes" if merge.added else "every class, on the new data (no class added)",
    }
    report["retention"] = _retention(report["old_classes"], report["base_old_classes"], "map50_95")
    report["retention_map50"] = _retention(report["old_classes"], report["base_old_classes"], "map50")
    return report


def _predicted(ctx: RunContext, weights: Path, items: list[list]) -> list[tuple[int, int]]:
    """(predicted class, true class) for each (image path, class) item: one model load, one pass."""
    import cv2
    from ultralytics import YOLO

    model = YOLO(str(weights))
    pairs: list[tuple[int, int]] = []
    for start in range(0, len(items), 32):
        chunk = items[start:start + 32]
        arrays = [cv2.imread(path, cv2.IMREAD_COLOR) for path, _ in chunk]  # the run's own files
        results = model.predict(arrays, imgsz=ctx.params["imgsz"], verbose=False,
                                device=first_device(ctx.params["device"]))
        pairs += [(int(r.probs.top1), label) for r, (_, label) in zip(results, chunk)]
    return pairs


def _top1(pairs: list[tuple[int, int]], class_ids: set[int]) -> float | None:
    chosen = [predicted == label for predicted, label in pairs if label in class_ids]
    return sum(chosen) / len(chosen) if chosen else None


def _classify_report(ctx: RunContext, merge: ClassMerge, manifest: dict[str, Any], weights: Path) -> dict[str, Any]:
    old_ids = set(range(merge.old_count))
    new_ids = set(range(merge.old_count, len(merge.names))) or set(range(len(merge.names)))
    sets = manifest["eval_sets"]
    on_old, on_new = _predicted(ctx, weights, sets["val_old"]), _predicted(ctx, weights, sets["val_new"])
    report = {
        "metric": "top1",
        "old_classes": _top1(on_old, old_ids),
        "new_classes": _top1(on_new, new_ids),
        "overall": _top1(on_old + on_new, old_ids | new_ids),
        "base_old_classes": _top1(_predicted(ctx, ctx.base_model.weights_path, sets["val_old"]), old_ids),
    }
    old, base = report["old_classes"], report["base_old_classes"]
    report["retention"] = old / base if old is not None and base else None
    return report


def evaluate(ctx: RunContext, merge: ClassMerge, data_root: Path, manifest: dict[str, Any],
             weights: Path) -> dict[str, Any]:
    if ctx.task == VisionTask.classify:
        return _classify_report(ctx, merge, manifest, weights)
    return _detection_report(ctx, merge, data_root, weights)
