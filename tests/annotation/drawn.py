"""Where the synthetic shapes really are, and predictions from the session's trained models to compare with them.

The trained models learned ``imagerec.datasets.synthetic`` images; the label files written with those images
are the ground truth the tests measure predictions against (IoU, coverage, pixel distances — not exact floats).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from imagerec.annotation.predictions import predict_kwargs, to_annotations
from imagerec.annotation.schemas import AnnotateParams, ImageAnnotations, Instance


@dataclass(frozen=True)
class DrawnObject:
    class_id: int
    box: tuple[float, float, float, float]  # pixels x1, y1, x2, y2
    polygon: np.ndarray | None = None  # (n, 2) pixels, segment datasets
    keypoints: np.ndarray | None = None  # (k, 2) pixels, pose datasets


def load_bgr(path: Path) -> np.ndarray:
    """Decoded as the endpoint hands images to Ultralytics: an HxWx3 array in BGR, the order it trained on."""
    return np.ascontiguousarray(np.asarray(Image.open(path).convert("RGB"))[..., ::-1])


def training_images(dataset_dir: Path, count: int) -> list[Path]:
    labelled = sorted(p for p in (dataset_dir / "images" / "train").iterdir() if _label_file(p).exists())
    return labelled[:count]


def classify_images(dataset_dir: Path, count: int) -> list[tuple[Path, str]]:
    """(image, class folder) pairs, classes interleaved as the generator wrote them."""
    images = sorted((dataset_dir / "train").glob("*/*.png"), key=lambda p: p.name)
    return [(path, path.parent.name) for path in images[:count]]


def _label_file(image: Path) -> Path:
    return image.parent.parent.parent / "labels" / image.parent.name / f"{image.stem}.txt"


def drawn_objects(image: Path, *, task: str) -> list[DrawnObject]:
    """The objects a training image holds, read back from its label file, in pixels."""
    width, height = Image.open(image).size
    objects = []
    for line in _label_file(image).read_text().splitlines():
        class_id, *values = line.split()
        values = np.array(values, dtype=float)
        if task == "segment":
            polygon = values.reshape(-1, 2) * [width, height]
            box = (*polygon.min(axis=0), *polygon.max(axis=0))
            objects.append(DrawnObject(int(class_id), tuple(map(float, box)), polygon=polygon))
            continue
        cx, cy, w, h = values[:4] * [width, height, width, height]
        box = (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
        keypoints = values[4:].reshape(-1, 3)[:, :2] * [width, height] if task == "pose" else None
        objects.append(DrawnObject(int(class_id), box, keypoints=keypoints))
    return objects


def box_iou(a, b) -> float:
    inter_w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    inter_h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = inter_w * inter_h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def instance_box(instance: Instance) -> tuple[float, float, float, float]:
    return instance.box.x1, instance.box.y1, instance.box.x2, instance.box.y2


def match(objects: list[DrawnObject], instances: list[Instance]) -> list[tuple[DrawnObject, Instance | None]]:
    """Each drawn object with the unused prediction that overlaps it most (IoU ≥ 0.5), or None."""
    used: set[int] = set()
    pairs = []
    for drawn in objects:
        ious = [(box_iou(drawn.box, instance_box(i)), n) for n, i in enumerate(instances) if n not in used]
        best_iou, best = max(ious, default=(0.0, None))
        if best is not None and best_iou >= 0.5:
            used.add(best)
            pairs.append((drawn, instances[best]))
        else:
            pairs.append((drawn, None))
    return pairs


def raster(polygons: list, *, width: int, height: int) -> np.ndarray:
    """Polygons (pixel points) filled into a boolean mask, the way cv2 draws them."""
    mask = np.zeros((height, width), np.uint8)
    for polygon in polygons:
        cv2.fillPoly(mask, [np.round(np.asarray(polygon)).astype(np.int32)], 1)
    return mask.astype(bool)


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


class Predictors:
    """One loaded YOLO per task, predicting the way the endpoint does (predict_kwargs → to_annotations)."""

    def __init__(self, trained_models) -> None:
        self.trained_models = trained_models
        self._yolos: dict[str, object] = {}

    def yolo(self, task: str):
        if task not in self._yolos:
            from ultralytics import YOLO

            self._yolos[task] = YOLO(str(self.trained_models(task).weights))
        return self._yolos[task]

    def annotate(self, task: str, image: Path, params: AnnotateParams | None = None,
                 kpt_names: list[str] | None = None) -> ImageAnnotations:
        params = params or AnnotateParams()
        yolo = self.yolo(task)
        names = dict(yolo.names)
        result = yolo.predict(load_bgr(image), **predict_kwargs(params, default_imgsz=64, names=names))[0]
        return to_annotations(result, file_name=image.name, params=params, names=names, kpt_names=kpt_names)
