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
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from imagerec.annotation.formats.coco import NOT_LABELLED, VISIBLE
from imagerec.annotation.formats.geometry import polygon_area
from imagerec.datasets.formats.base import Annotation, ExportSink, ExportSource, Sample, box_corners
from imagerec.datasets.validation import Metadata
from imagerec.pillow import pillow_open

DIGITS = 4


@dataclass
class _Document:
    """One split's annotation file, grown sample by sample: its images and annotations are written as JSON
    fragments into two spool files beside the export, so a split of a million objects never sits in memory."""

    task: str
    kpt_shape: list[int] | None
    folder: Path
    split: str
    images: int = 0
    annotations: int = 0
    spools: dict[str, TextIO] = field(default_factory=dict)

    def add(self, sample: Sample, *, width: int, height: int) -> None:
        self.images += 1
        self._spool("images", {"id": self.images, "file_name": sample.name, "width": width, "height": height},
                    first=self.images == 1)
        for annotation in sample.annotations:
            self.annotations += 1
            entry = {"id": self.annotations, "image_id": self.images, "category_id": annotation.class_id + 1,
                     "iscrowd": 0}
            self._spool("annotations", entry | self._shape(annotation, width, height), first=self.annotations == 1)

    def _spool(self, kind: str, entry: dict, *, first: bool) -> None:
        if kind not in self.spools:
            self.spools[kind] = open(self.folder / f"{self.split}.{kind}", "w")  # closed by _append
        self.spools[kind].write(("" if first else ",") + json.dumps(entry))

    def _shape(self, annotation: Annotation, width: int, height: int) -> dict:
        cx, cy, w, h = annotation.box or _extent(annotation.polygon)
        bbox = [(cx - w / 2) * width, (cy - h / 2) * height, w * width, h * height]
        shape = {"bbox": _rounded(bbox), "area": round(bbox[2] * bbox[3], DIGITS), "segmentation": []}
        if self.task == "segment":
            flat = list(annotation.polygon) or box_corners((cx, cy, w, h))
            points = [[x * width, y * height] for x, y in zip(flat[0::2], flat[1::2])]
            shape["segmentation"] = [_rounded([value for point in points for value in point])]
            shape["area"] = round(polygon_area(points), DIGITS)
        if self.task == "pose" and self.kpt_shape:
            shape |= _keypoints(annotation.keypoints, self.kpt_shape, width, height)
        return shape

    def write(self, categories: list[dict]) -> Path:
        """The whole annotation file, assembled from the spools (which it removes)."""
        path = self.folder / f"instances_{self.split}.json"
        with open(path, "w") as out:
            out.write('{"info": {"description": "exported by imagerec"}, "licenses": [], "images": [')
            self._append("images", out)
            out.write('], "annotations": [')
            self._append("annotations", out)
            out.write(f'], "categories": {json.dumps(categories)}}}')
        return path

    def _append(self, kind: str, out: TextIO) -> None:
        spool = self.folder / f"{self.split}.{kind}"
        if kind in self.spools:
            self.spools.pop(kind).close()
            with open(spool) as source:
                shutil.copyfileobj(source, out)
            spool.unlink()


def export(source: ExportSource, sink: ExportSink) -> None:
    documents: dict[str, _Document] = {}
    with tempfile.TemporaryDirectory(dir=source.work_dir) as folder:
        for sample in source.samples():
            split = sample.split or "train"
            document = documents.setdefault(split, _Document(source.task, source.metadata.kpt_shape, Path(folder),
                                                             split))
            with pillow_open()(sample.image) as image:
                width, height = image.size
            document.add(sample, width=width, height=height)
            sink.add_file(f"images/{split}/{sample.name}", sample.image)
        categories = _categories(source.metadata, task=source.task)
        for split, document in documents.items():
            sink.add_file(f"annotations/instances_{split}.json", document.write(categories))


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


def _extent(polygon: tuple[float, ...]) -> tuple[float, float, float, float]:
    xs, ys = polygon[0::2], polygon[1::2]
    return (min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2, max(xs) - min(xs), max(ys) - min(ys)
