"""Ultralytics ``Results`` → imagerec ``ImageAnnotations``, and the request checks that come before predicting.

The caller decodes the image (EXIF orientation applied) and predicts on the numpy array with ``predict_kwargs``;
``to_annotations`` then reads one result. Coordinates are pixels of that array, clamped into the image.

Polygons come from the instance masks sampled at the image's resolution, one per connected part, never from
``masks.xy``: Ultralytics keeps only the largest contour there, so a part hidden behind another object
would be lost. Ultralytics is not imported here; ``result`` is duck-typed, so this module loads fast.
"""

from __future__ import annotations

from collections.abc import Iterable

import cv2
import numpy as np

from imagerec.annotation.schemas import AnnotateParams, Box, ImageAnnotations, Instance, Keypoint, Label, Shape
from imagerec.errors import Unprocessable

TASK_SHAPES: dict[str, frozenset[Shape]] = {
    "detect": frozenset({Shape.bbox}),
    "segment": frozenset({Shape.bbox, Shape.polygon}),
    "pose": frozenset({Shape.bbox, Shape.keypoints}),
    "classify": frozenset({Shape.label}),
}
SHAPE_TASK = {Shape.polygon: "segment", Shape.keypoints: "pose", Shape.label: "classify", Shape.bbox: "detect"}


# --- request checks ---------------------------------------------------------------------------------------------

def shapes_for_task(task: str) -> set[Shape]:
    """Everything a model of ``task`` can produce (the default when a request names no shapes)."""
    if task not in TASK_SHAPES:
        raise Unprocessable(f"models of task {task!r} cannot annotate; expected one of {sorted(TASK_SHAPES)}")
    return set(TASK_SHAPES[task])


def check_shapes(shapes: Iterable[Shape] | None, task: str) -> None:
    """Refuse shapes a ``task`` model cannot produce, naming the kind of model that could."""
    possible = shapes_for_task(task)
    if shapes is None:
        return
    wanted = [Shape(s) for s in shapes]
    if not wanted:
        raise Unprocessable(f"shapes is empty; a {task} model can produce {_listed(possible)}")
    for shape in wanted:
        if shape not in possible:
            raise Unprocessable(
                f"a {task} model cannot produce '{shape}' (that needs a {SHAPE_TASK[shape]} model); "
                f"it can produce {_listed(possible)}"
            )


def resolve_classes(classes: list[str] | None, names: dict[int, str]) -> list[int] | None:
    """Class names or id strings (a form may send "a,b" as one entry) → sorted ids; None keeps every class."""
    if not classes:
        return None
    entries = [part.strip() for entry in classes for part in str(entry).split(",") if part.strip()]
    by_name = {name: class_id for class_id, name in names.items()}
    by_folded = {name.casefold(): class_id for class_id, name in names.items()}
    ids = set()
    for entry in entries:
        class_id = by_name.get(entry, by_folded.get(entry.casefold()))
        if class_id is None and entry.isdigit() and int(entry) in names:
            class_id = int(entry)
        if class_id is None:
            known = ", ".join(f"{i}={n}" for i, n in sorted(names.items()))
            raise Unprocessable(f"unknown class {entry!r}; the model knows {known}")
        ids.add(class_id)
    return sorted(ids) or None


def predict_kwargs(params: AnnotateParams, *, default_imgsz: int, names: dict[int, str] | None = None) -> dict:
    """Keyword arguments for ``yolo.predict``.

    Pass ``names`` so the class filter runs inside NMS: then ``max_det`` counts only the wanted classes.
    Without it ``to_annotations`` still filters, after the fact.
    """
    kwargs = dict(
        conf=params.conf, iou=params.iou, imgsz=params.imgsz or default_imgsz, max_det=params.max_det,
        retina_masks=False,  # to_annotations upsamples each mask over its own box: bounded memory
        verbose=False, save=False,
    )
    if names is not None:
        kwargs["classes"] = resolve_classes(params.classes, names)
    return kwargs


def _listed(shapes: Iterable[Shape]) -> str:
    return ", ".join(sorted(str(s) for s in shapes))


# --- reading a result -------------------------------------------------------------------------------------------

def result_task(result) -> str:
    """The task a result came from, read from what it holds."""
    if getattr(result, "probs", None) is not None:
        return "classify"
    if getattr(result, "keypoints", None) is not None:
        return "pose"
    if getattr(result, "masks", None) is not None:
        return "segment"
    return "detect"


def to_annotations(result, *, file_name: str, params: AnnotateParams, names: dict[int, str],
                   kpt_names: list[str] | None = None) -> ImageAnnotations:
    """One Ultralytics result → the annotations of one image, strongest first."""
    height, width = (int(v) for v in result.orig_shape[:2])
    task = result_task(result)
    wanted = set(params.shapes) if params.shapes else shapes_for_task(task)
    allowed = resolve_classes(params.classes, names)
    annotations = ImageAnnotations(file_name=file_name, width=width, height=height)
    if task == "classify":
        annotations.labels = _labels(result, names=names, allowed=allowed, top_k=params.top_k)
    else:
        reader = _InstanceReader(result, names=names, params=params, wanted=wanted, kpt_names=kpt_names)
        annotations.instances = reader.instances(allowed)
    return annotations


def _labels(result, *, names: dict[int, str], allowed: list[int] | None, top_k: int) -> list[Label]:
    probs = _numpy(result.probs.data).astype(float)
    order = sorted(range(len(probs)), key=lambda i: (-probs[i], i))
    if allowed is not None:
        keep = set(allowed)
        order = [i for i in order if i in keep]
    return [Label(class_id=i, class_name=_name(names, i), score=float(probs[i])) for i in order[:top_k]]


class _InstanceReader:
    """Reads the boxes, masks and keypoints of one detect/segment/pose result."""

    def __init__(self, result, *, names: dict[int, str], params: AnnotateParams, wanted: set[Shape],
                 kpt_names: list[str] | None) -> None:
        self.height, self.width = (int(v) for v in result.orig_shape[:2])
        self.names, self.params, self.wanted, self.kpt_names = names, params, wanted, kpt_names
        boxes = result.boxes
        self.xyxy = _numpy(boxes.xyxy).astype(float) if boxes is not None else np.zeros((0, 4))
        self.scores = _numpy(boxes.conf).astype(float) if boxes is not None else np.zeros(0)
        self.class_ids = _numpy(boxes.cls).astype(int) if boxes is not None else np.zeros(0, int)
        # clamped once for all instances, as Python floats: np.clip per scalar cost most of the conversion
        self.clamped = _clamped_xy(self.xyxy.reshape(-1, 2), self.width, self.height).reshape(-1, 4).tolist()
        self.masks = _mask_sampler(result) if Shape.polygon in wanted else None
        keypoints = getattr(result, "keypoints", None)
        self.keypoints = _numpy(keypoints.data).astype(float) if keypoints is not None else None

    def instances(self, allowed: list[int] | None) -> list[Instance]:
        order = sorted(range(len(self.scores)), key=lambda i: (-self.scores[i], i))
        if allowed is not None:
            keep = set(allowed)
            order = [i for i in order if int(self.class_ids[i]) in keep]
        return [self._instance(i) for i in order]

    def _instance(self, index: int) -> Instance:
        class_id = int(self.class_ids[index])
        instance = Instance(class_id=class_id, class_name=_name(self.names, class_id), score=float(self.scores[index]))
        if Shape.bbox in self.wanted:
            instance.box = self._box(self.clamped[index])
        if self.masks is not None:
            instance.polygons = self.masks.polygons(index, self.xyxy[index],
                                                    tolerance=self.params.polygon_tolerance)
        if Shape.keypoints in self.wanted and self.keypoints is not None:
            instance.keypoints = self._keypoints(self.keypoints[index])
        return instance

    def _box(self, clamped: list[float]) -> Box:
        x1, y1, x2, y2 = clamped
        return Box(x1=x1, y1=y1, x2=x2, y2=y2, cx=(x1 + x2) / 2 / self.width, cy=(y1 + y2) / 2 / self.height,
                   w=(x2 - x1) / self.width, h=(y2 - y1) / self.height)

    def _keypoints(self, points: np.ndarray) -> list[Keypoint]:
        xy = _clamped_xy(points[:, :2], self.width, self.height).tolist()
        confs = points[:, 2].tolist() if points.shape[1] > 2 else [None] * len(points)
        kept = []
        for index, ((x, y), conf) in enumerate(zip(xy, confs)):
            if conf is not None and conf < self.params.keypoint_conf:
                continue
            name = self.kpt_names[index] if self.kpt_names and index < len(self.kpt_names) else None
            kept.append(Keypoint(index=index, name=name, conf=conf, x=x, y=y))
        return kept


def _clamped_xy(points: np.ndarray, width: int, height: int) -> np.ndarray:
    """(N, 2) pixel points clamped into the image, in one vectorised pass."""
    return np.clip(points, 0, (width, height))


class _MaskSampler:
    """Reads an instance mask at image resolution, only over the instance's box.

    Ultralytics gives masks at the letterboxed model-input size; upsampling every mask to the whole image
    (``retina_masks=True``) costs N×H×W floats — gigabytes for a large photo with many objects — so each mask is
    sampled over its own box instead, the same bilinear mapping Ultralytics' ``scale_masks`` uses.
    """

    def __init__(self, masks: np.ndarray, *, height: int, width: int) -> None:
        self.masks, self.height, self.width = masks, height, width
        mask_h, mask_w = masks.shape[1:]
        gain = min(mask_h / height, mask_w / width)
        content_h, content_w = max(round(height * gain), 1), max(round(width * gain), 1)
        self.top, self.left = round((mask_h - content_h) / 2 - 0.1), round((mask_w - content_w) / 2 - 0.1)
        self.scale_y, self.scale_x = content_h / height, content_w / width

    def polygons(self, index: int, box: np.ndarray, *, tolerance: float) -> list[list[list[float]]]:
        x0, y0 = (max(int(np.floor(v)) - 1, 0) for v in box[:2])
        x1, y1 = min(int(np.ceil(box[2])) + 1, self.width), min(int(np.ceil(box[3])) + 1, self.height)
        if x1 <= x0 or y1 <= y0:
            return []
        # maps a crop pixel's centre to mask coordinates (cv2 samples the source at what the matrix gives)
        matrix = np.array([[self.scale_x, 0, (x0 + 0.5) * self.scale_x - 0.5 + self.left],
                           [0, self.scale_y, (y0 + 0.5) * self.scale_y - 0.5 + self.top]], np.float32)
        crop = cv2.warpAffine(self.masks[index], matrix, (x1 - x0, y1 - y0),
                              flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT)
        return mask_polygons(crop > 0.5, tolerance=tolerance, offset=(x0, y0))


def _mask_sampler(result) -> _MaskSampler | None:
    masks = getattr(result, "masks", None)
    if masks is None or not len(masks.data):
        return None
    height, width = (int(v) for v in result.orig_shape[:2])
    return _MaskSampler(_numpy(masks.data).astype(np.float32), height=height, width=width)


def mask_polygons(mask: np.ndarray, *, tolerance: float, offset: tuple[int, int] = (0, 0)) -> list[list[list[float]]]:
    """One simplified polygon per connected part of ``mask``, largest first; parts under 3 points dropped."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE, offset=offset)
    polygons = []
    for contour in sorted(contours, key=lambda c: (-cv2.contourArea(c), tuple(c[0, 0]))):
        simplified = cv2.approxPolyDP(contour, tolerance, True) if tolerance > 0 else contour
        points = simplified.reshape(-1, 2)
        if len(points) >= 3:
            polygons.append([[float(x), float(y)] for x, y in points])
    return polygons


def _name(names: dict[int, str], class_id: int) -> str:
    return names.get(class_id, str(class_id))


def _numpy(values) -> np.ndarray:
    return values.cpu().numpy() if hasattr(values, "cpu") else np.asarray(values)
