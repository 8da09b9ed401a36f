"""COCO output: one document with images, categories and annotations (``format=coco``, and the batch job's file).

Ids: images 1…n in request order, annotations 1…m; ``category_id`` is the model's class id (0-based, as in the
json output) so the two outputs line up. Boxes are ``[x, y, w, h]`` in pixels; ``area`` is the polygon area for
segmentation (sum over the parts), else the box area. Pose keypoints are ``[x, y, v, …]`` with v=2 for a kept
keypoint and 0 (x=y=0) for one dropped by ``keypoint_conf``.

Classification has no COCO annotation type; each top-k label becomes an annotation with ``category_id`` and
``score`` and no ``bbox`` (pycocotools indexes it; box evaluators ignore it). The document keeps the predictions
rather than refusing, so one format serves every task.
"""

from __future__ import annotations

from starlette.responses import JSONResponse, Response

from imagerec.annotation.formats.geometry import instance_xyxy, keypoint_count, keypoint_names, polygon_area
from imagerec.annotation.schemas import FileError, ImageAnnotations, Instance, ModelSummary

VISIBLE, NOT_LABELLED = 2, 0  # COCO keypoint visibility flags


def coco_document(model: ModelSummary, images: list[ImageAnnotations], *,
                  kpt_names: list[str] | None = None) -> dict:
    """The COCO dict for ``images``; pose keypoint names from ``kpt_names`` or the output (else kp0, kp1, …)."""
    if model.task == "pose" and kpt_names is None:
        kpt_names = keypoint_names(images, keypoint_count(images))
    builder = _AnnotationBuilder(num_keypoints=len(kpt_names) if model.task == "pose" else 0)
    for image_id, image in enumerate(images, start=1):
        builder.add_image(image_id, image)
    return {
        "info": {"description": f"imagerec auto-annotation by model {model.name!r} (id {model.id}, {model.task})",
                 "contributor": "imagerec"},
        "images": [{"id": i, "file_name": image.file_name, "width": image.width, "height": image.height}
                   for i, image in enumerate(images, start=1)],
        "categories": _categories(model, kpt_names),
        "annotations": builder.annotations,
    }


def render(*, model: ModelSummary, images: list[ImageAnnotations], errors: list[FileError]) -> Response:
    document = coco_document(model, images)
    document["errors"] = [error.model_dump() for error in errors]  # extra key: COCO readers ignore it
    return JSONResponse(document)


def _categories(model: ModelSummary, kpt_names: list[str] | None) -> list[dict]:
    categories = [{"id": class_id, "name": name, "supercategory": "object"}
                  for class_id, name in enumerate(model.class_names)]
    if model.task == "pose":
        for category in categories:
            category |= {"keypoints": list(kpt_names or []), "skeleton": []}
    return categories


class _AnnotationBuilder:
    def __init__(self, *, num_keypoints: int) -> None:
        self.num_keypoints = num_keypoints
        self.annotations: list[dict] = []

    def _add(self, annotation: dict) -> None:
        self.annotations.append({"id": len(self.annotations) + 1} | annotation)

    def add_image(self, image_id: int, image: ImageAnnotations) -> None:
        for label in image.labels:
            self._add({"image_id": image_id, "category_id": label.class_id, "score": label.score, "iscrowd": 0})
        for instance in image.instances:
            self._add(self._instance(image_id, instance))

    def _instance(self, image_id: int, instance: Instance) -> dict:
        annotation = {"image_id": image_id, "category_id": instance.class_id, "score": instance.score, "iscrowd": 0}
        extent = instance_xyxy(instance)
        if extent is not None:
            x1, y1, x2, y2 = extent
            annotation |= {"bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1)}
        if instance.polygons is not None:
            annotation["segmentation"] = [[c for point in polygon for c in point] for polygon in instance.polygons]
            annotation["area"] = sum(polygon_area(polygon) for polygon in instance.polygons)
        if instance.keypoints is not None and self.num_keypoints:
            annotation |= self._keypoints(instance)
        return annotation

    def _keypoints(self, instance: Instance) -> dict:
        flat = [0.0, 0.0, NOT_LABELLED] * self.num_keypoints
        for keypoint in instance.keypoints or []:
            if keypoint.index < self.num_keypoints:
                flat[3 * keypoint.index: 3 * keypoint.index + 3] = [keypoint.x, keypoint.y, VISIBLE]
        return {"keypoints": flat, "num_keypoints": sum(1 for v in flat[2::3] if v == VISIBLE)}
