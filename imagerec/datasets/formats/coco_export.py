"""COCO export: ``images/<split>/<name>`` and ``annotations/instances_<split>.json`` for each split.

The layout of COCO's own releases (one annotation file per split, images in a folder per split), so pycocotools,
CVAT and Roboflow read it, and so does ``coco`` here (it looks in ``images/<split>/`` first, so a name that two
splits share comes back to each). ``file_name`` is the image's name inside its split folder. Images and
annotations are numbered from 1 in each file; categories are 1…n in class order, supercategory ``none``
(category ids start at 1 because 0 is background to several COCO tools).

``bbox`` is ``[x, y, w, h]`` in pixels and ``iscrowd`` 0. Segment: ``segmentation`` is the polygon in pixels and
``area`` its area; detect and pose: ``[]`` and the box's area. Pose: ``keypoints`` is ``[x, y, v] * K`` with the
label's v (kpt_shape ``[K, 2]`` has none: 2, or 0 for a keypoint at 0 0), ``num_keypoints`` the labelled ones, and
each category names its keypoints ``kp0…`` with an empty ``skeleton``. flip_idx has no COCO field: it goes in an
extra ``flip_idx`` key of each category (readers ignore unknown keys), which ``coco`` reads back. Image sizes come
from the image headers. Values are rounded to 1e-4 pixels, far below a label's own precision.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from imagerec.annotation.formats.coco import NOT_LABELLED, VISIBLE
from imagerec.annotation.formats.geometry import polygon_area
from imagerec.datasets.formats.base import Annotation, ExportSink, ExportSource, Sample
from imagerec.datasets.validation import Metadata
from imagerec.pillow import pillow_open

DIGITS = 4


@dataclass
class _Document:
    """One split's annotation file, grown sample by sample."""

    task: str
    kpt_shape: list[int] | None
    images: list[dict] = field(default_factory=list)
    annotations: list[dict] = field(default_factory=list)

    def add(self, sample: Sample, *, width: int, height: int) -> None:
        image_id = len(self.images) + 1
        self.images.append({"id": image_id, "file_name": sample.name, "width": width, "height": height})
        for annotation in sample.annotations:
            entry = {"id": len(self.annotations) + 1, "image_id": image_id, "category_id": annotation.class_id + 1,
                     "iscrowd": 0}
            self.annotations.append(entry | self._shape(annotation, width, height))

    def _shape(self, annotation: Annotation, width: int, height: int) -> dict:
        cx, cy, w, h = annotation.box or _extent(annotation.polygon)
        bbox = [(cx - w / 2) * width, (cy - h / 2) * height, w * width, h * height]
        shape = {"bbox": _rounded(bbox), "area": round(bbox[2] * bbox[3], DIGITS), "segmentation": []}
        if self.task == "segment":
            flat = list(annotation.polygon) or _corners(cx, cy, w, h)
            points = [[x * width, y * height] for x, y in zip(flat[0::2], flat[1::2])]
            shape["segmentation"] = [_rounded([value for point in points for value in point])]
            shape["area"] = round(polygon_area(points), DIGITS)
        if self.task == "pose" and self.kpt_shape:
            shape |= _keypoints(annotation.keypoints, self.kpt_shape, width, height)
        return shape

    def as_json(self, categories: list[dict]) -> bytes:
        document = {"info": {"description": "exported by imagerec"}, "licenses": [], "images": self.images,
                    "annotations": self.annotations, "categories": categories}
        return json.dumps(document).encode()


def export(source: ExportSource, sink: ExportSink) -> None:
    documents: dict[str, _Document] = {}
    for sample in source.samples():
        split = sample.split or "train"
        document = documents.setdefault(split, _Document(source.task, source.metadata.kpt_shape))
        with pillow_open()(sample.image) as image:
            width, height = image.size
        document.add(sample, width=width, height=height)
        sink.add_file(f"images/{split}/{sample.name}", sample.image)
    categories = _categories(source.metadata, task=source.task)
    for split, document in documents.items():
        sink.add_bytes(f"annotations/instances_{split}.json", document.as_json(categories))


def _categories(metadata: Metadata, *, task: str) -> list[dict]:
    categories = [{"id": class_id + 1, "name": name, "supercategory": "none"}
                  for class_id, name in enumerate(metadata.class_names)]
    if task == "pose" and metadata.kpt_shape:
        pose = {"keypoints": [f"kp{index}" for index in range(metadata.kpt_shape[0])], "skeleton": []}
        if metadata.flip_idx:
            pose["flip_idx"] = list(metadata.flip_idx)
        for category in categories:
            category |= pose
    return categories


def _keypoints(values: tuple[float, ...], kpt_shape: list[int], width: int, height: int) -> dict:
    count, dims = kpt_shape
    flat: list[float] = []
    for index in range(count):
        x, y, *rest = values[index * dims:(index + 1) * dims] or (0.0, 0.0)
        # [K, 2] labels have no visibility: Ultralytics takes a keypoint at 0 0 for a missing one
        visibility = int(round(rest[0])) if rest else (VISIBLE if (x, y) != (0, 0) else NOT_LABELLED)
        flat += [x * width, y * height, visibility] if visibility else [0.0, 0.0, NOT_LABELLED]
    return {"keypoints": [round(value, DIGITS) for value in flat],
            "num_keypoints": sum(1 for visibility in flat[2::3] if visibility)}


def _rounded(values: list[float]) -> list[float]:
    return [round(value, DIGITS) for value in values]


def _corners(cx: float, cy: float, w: float, h: float) -> list[float]:
    x1, y1, x2, y2 = cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2
    return [x1, y1, x2, y1, x2, y2, x1, y2]


def _extent(polygon: tuple[float, ...]) -> tuple[float, float, float, float]:
    xs, ys = polygon[0::2], polygon[1::2]
    return (min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2, max(xs) - min(xs), max(ys) - min(ys)
