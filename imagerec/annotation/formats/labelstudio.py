"""Label Studio predictions (``format=labelstudio``, and the Label Studio ML backend's ``/predict``).

Regions use percent coordinates (0–100 of the image), x/y at the top-left, as Label Studio stores them
(protocol: shared/guides/labelstudio.md; conventions of label-studio-ml-backend's YOLO example):

- a box → ``rectanglelabels``; each polygon part → its own ``polygonlabels`` region (closed);
- a segmentation instance → one ``brushlabels`` region (its polygon parts filled, Label Studio's RLE), only for
  a config with a BrushLabels tag: masks are image-sized, so ``format=labelstudio`` leaves them out;
- a pose instance → a hidden parent box (``id`` ``bbox-<n>``, ``from_name`` ``<keypoint from_name>_bbox``) and a
  ``keypointlabels`` region per kept keypoint, linked to it by ``parentID``;
- classification → ``choices`` with the best label the label map allows.

``format=labelstudio`` answers ``{"model", "tasks", "errors"}``: ``tasks`` is a list that Label Studio imports as
is (each ``{"data": {"image": file name}, "predictions": [prediction]}``); point ``data.image`` at where the image
is served before importing. A Label Studio control tag holds regions of one type only, so each type has its own
``from_name`` (``RegionTargets``' defaults), all drawn on ``to_name`` ``image``; the project's label config names
its tags to match::

    rectanglelabels   label       <RectangleLabels name="label" toName="image">
    polygonlabels     polygon     <PolygonLabels name="polygon" toName="image">
    keypointlabels    kp          <KeyPointLabels name="kp" toName="image">, with its hidden parent boxes under
                      kp_bbox     <RectangleLabels name="kp_bbox" toName="image">
    choices           choice      <Choices name="choice" toName="image">

with ``<Image name="image" value="$image"/>`` and one ``<Label value=…>`` per class name. The ML backend
(``imagerec.labelstudio``) takes every name from the project's own label config instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from starlette.responses import JSONResponse, Response

from imagerec.annotation.formats.brush_rle import encode_mask
from imagerec.annotation.formats.geometry import instance_xyxy
from imagerec.annotation.schemas import FileError, ImageAnnotations, Instance, ModelSummary

KEYPOINT_SIZE_PERCENT = 0.5  # how big Label Studio draws a predicted point; only styling


@dataclass(frozen=True)
class RegionTargets:
    """(from_name, to_name) per region kind, from a Label Studio label config; None: the config has no such tag.

    The defaults (``format=labelstudio``) differ per kind: one control tag cannot hold two region types.
    """

    rectangle: tuple[str, str] | None = ("label", "image")
    polygon: tuple[str, str] | None = ("polygon", "image")
    keypoint: tuple[str, str] | None = ("kp", "image")
    choices: tuple[str, str] | None = ("choice", "image")
    brush: tuple[str, str] | None = None


def model_version(model: ModelSummary) -> str:
    return f"imagerec-model-{model.id}"


def prediction(image: ImageAnnotations, *, model_version: str, targets: RegionTargets = RegionTargets(),
               label_map: dict[str, str] | None = None, keypoint_labels: dict[int, str] | None = None,
               score_threshold: float = 0.0) -> dict:
    """One Label Studio prediction for ``image``: ``{"result": [region, …], "score": mean, "model_version"}``.

    ``label_map`` (model class name → Label Studio label) drops classes it does not name; ``keypoint_labels``
    (keypoint index → label) drops keypoints it does not name. None maps nothing away and keeps model names.
    """
    builder = _RegionBuilder(image, targets=targets, label_map=label_map, keypoint_labels=keypoint_labels)
    scores: list[float] = []
    for instance in image.instances:
        if instance.score >= score_threshold and builder.label(instance.class_name) is not None:
            if builder.add_instance(instance):  # an instance this config has no region for does not count
                scores.append(instance.score)
    choice = _best_label(image, builder, score_threshold)
    if choice is not None and targets.choices is not None:
        builder.add_choice(*choice)
        scores.append(choice[1])
    return {"result": builder.regions, "score": sum(scores) / len(scores) if scores else 0.0,
            "model_version": model_version}


def render(*, model: ModelSummary, images: list[ImageAnnotations], errors: list[FileError]) -> Response:
    version = model_version(model)
    tasks = [{"data": {"image": image.file_name}, "predictions": [prediction(image, model_version=version)]}
             for image in images]
    return JSONResponse({"model": model.model_dump(), "tasks": tasks,
                         "errors": [error.model_dump() for error in errors]})


def _best_label(image: ImageAnnotations, builder: _RegionBuilder, threshold: float) -> tuple[str, float] | None:
    """The top label the map allows: a label map that leaves out the model's top-1 still gets the next one."""
    for label in image.labels:  # already strongest first
        mapped = builder.label(label.class_name)
        if mapped is not None:
            return (mapped, label.score) if label.score >= threshold else None
    return None


class _RegionBuilder:
    def __init__(self, image: ImageAnnotations, *, targets: RegionTargets, label_map: dict[str, str] | None,
                 keypoint_labels: dict[int, str] | None) -> None:
        self.image, self.targets = image, targets
        self.label_map, self.keypoint_labels = label_map, keypoint_labels
        self.regions: list[dict] = []
        self.parents = 0

    def label(self, class_name: str) -> str | None:
        return class_name if self.label_map is None else self.label_map.get(class_name)

    def _region(self, target: tuple[str, str], kind: str, value: dict, score: float, **extra) -> None:
        from_name, to_name = target
        self.regions.append(extra | {
            "from_name": from_name, "to_name": to_name, "type": kind, "value": value, "score": score,
            "original_width": self.image.width, "original_height": self.image.height, "image_rotation": 0})

    def _x(self, pixels: float) -> float:
        return min(max(pixels / self.image.width * 100, 0.0), 100.0)

    def _y(self, pixels: float) -> float:
        return min(max(pixels / self.image.height * 100, 0.0), 100.0)

    def _rectangle(self, instance: Instance) -> dict | None:
        extent = instance_xyxy(instance)
        if extent is None:
            return None
        x1, y1, x2, y2 = extent
        return {"x": self._x(x1), "y": self._y(y1), "width": self._x(x2) - self._x(x1),
                "height": self._y(y2) - self._y(y1), "rotation": 0}

    def add_instance(self, instance: Instance) -> bool:
        """The instance's regions for every target the config has; False when it has none."""
        before = len(self.regions)
        label = self.label(instance.class_name)
        rectangle = self._rectangle(instance)
        if self.targets.rectangle and instance.box is not None and rectangle:
            self._region(self.targets.rectangle, "rectanglelabels", rectangle | {"rectanglelabels": [label]},
                         instance.score)
        if self.targets.polygon:
            for polygon in instance.polygons or []:
                points = [[self._x(x), self._y(y)] for x, y in polygon]
                self._region(self.targets.polygon, "polygonlabels",
                             {"points": points, "closed": True, "polygonlabels": [label]}, instance.score)
        if self.targets.brush and instance.polygons:
            self._region(self.targets.brush, "brushlabels",
                         {"format": "rle", "rle": self._brush_rle(instance.polygons), "brushlabels": [label]},
                         instance.score)
        if self.targets.keypoint and instance.keypoints is not None and rectangle:
            self._add_keypoints(instance, label, rectangle)
        return len(self.regions) > before

    def _brush_rle(self, polygons: list[list[list[float]]]) -> list[int]:
        mask = np.zeros((self.image.height, self.image.width), np.uint8)
        cv2.fillPoly(mask, [np.round(np.asarray(polygon)).astype(np.int32) for polygon in polygons], 1)
        return encode_mask(mask.astype(bool))

    def _add_keypoints(self, instance: Instance, label: str, rectangle: dict) -> None:
        """A hidden parent box groups the instance's points, as Label Studio's YOLO backend does."""
        from_name, to_name = self.targets.keypoint
        parent_id = f"bbox-{self.parents}"
        self.parents += 1
        self._region((f"{from_name}_bbox", to_name), "rectanglelabels", rectangle | {"rectanglelabels": [label]},
                     instance.score, id=parent_id, hidden=True)
        for keypoint in instance.keypoints:
            point_label = self._keypoint_label(keypoint.index, keypoint.name)
            if point_label is None:
                continue
            value = {"x": self._x(keypoint.x), "y": self._y(keypoint.y), "width": KEYPOINT_SIZE_PERCENT,
                     "keypointlabels": [point_label]}
            score = keypoint.conf if keypoint.conf is not None else instance.score
            self._region(self.targets.keypoint, "keypointlabels", value, score, parentID=parent_id)

    def _keypoint_label(self, index: int, name: str | None) -> str | None:
        if self.keypoint_labels is None:
            return name or f"kp{index}"
        return self.keypoint_labels.get(index)

    def add_choice(self, label: str, score: float) -> None:
        self._region(self.targets.choices, "choices", {"choices": [label]}, score)
