"""Label Studio export: a ``tasks.json`` that Label Studio imports, the images, and a label config to match.

Each sample becomes a task ``{"data": {"image": "images/<split>/<name>", "split": <split>}, "annotations":
[{"result": [region, …]}]}`` and its image is written at that path. Regions carry ``original_width`` and
``original_height`` and use percent coordinates with x/y at the top-left, as Label Studio stores them; their
``from_name``/``to_name`` are the annotation renderer's defaults (``RegionTargets``), which ``label_config.xml``
declares, with the class names (and keypoint labels ``kp0``, ``kp1``…) in their order:

- detect: a ``rectanglelabels`` region per box; segment: a ``polygonlabels`` region per polygon;
- pose: a ``rectanglelabels`` region per instance (``id`` ``r<n>``) and a ``keypointlabels`` region per visible
  keypoint with that ``parentID``;
- classify: one ``choices`` region.

``config_labels`` reads such a config back (any ``<View>`` XML in an upload) for the importer's label order.

Point ``data.image`` at where Label Studio serves the images (local files storage, ``/data/local-files/?d=``)
before importing; ``labelstudio`` reads this layout back, classes and splits included.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ElementTree
from xml.etree.ElementTree import Element

from imagerec.annotation.formats.labelstudio import KEYPOINT_SIZE_PERCENT, RegionTargets
from imagerec.datasets.formats.base import (
    Annotation,
    ExportSink,
    ExportSource,
    Sample,
    SourceTree,
    box_corners,  # the YOLO writer's own segment fallback
)
from imagerec.pillow import pillow_open

TARGETS = RegionTargets()
TASKS_FILE = "tasks.json"
CONFIG_FILE = "label_config.xml"
CONFIG_MAX_BYTES = 4 * 1024 * 1024


def export(source: ExportSource, sink: ExportSink) -> None:
    keypoint_labels = _keypoint_labels(source)
    tasks = []
    for sample in source.samples():
        split = sample.split or "train"
        arcname = f"images/{split}/{sample.name}"
        sink.add_file(arcname, sample.image)
        with pillow_open()(sample.image) as image:
            size = image.size
        regions = _Regions(source, size=size, keypoint_labels=keypoint_labels).of(sample)
        tasks.append({"data": {"image": arcname, "split": split}, "annotations": [{"result": regions}]})
    sink.add_bytes(TASKS_FILE, json.dumps(tasks, indent=1).encode())
    sink.add_bytes(CONFIG_FILE, label_config(source, keypoint_labels=keypoint_labels))


def _keypoint_labels(source: ExportSource) -> list[str]:
    shape = source.metadata.kpt_shape
    return [f"kp{index}" for index in range(shape[0])] if source.task == "pose" and shape else []


class _Regions:
    """The result regions of one image."""

    def __init__(self, source: ExportSource, *, size: tuple[int, int], keypoint_labels: list[str]):
        self.task, self.names = source.task, source.metadata.class_names
        self.dims = source.metadata.kpt_shape[1] if source.metadata.kpt_shape else 3
        self.size, self.keypoint_labels = size, keypoint_labels
        self.regions: list[dict] = []

    def of(self, sample: Sample) -> list[dict]:
        if self.task == "classify":
            if sample.class_id is not None:
                self._add(TARGETS.choices, "choices", {"choices": [self.names[sample.class_id]]})
            return self.regions
        for annotation in sample.annotations:
            label = self.names[annotation.class_id]
            if self.task == "segment":
                self._polygon(annotation, label)
            elif annotation.box is not None:
                parent = self._add(TARGETS.rectangle, "rectanglelabels", _rectangle(annotation.box) | {
                    "rectanglelabels": [label]})
                if self.task == "pose":
                    self._keypoints(annotation, parent)
        return self.regions

    def _add(self, target: tuple[str, str], kind: str, value: dict, **extra) -> str:
        region_id = f"r{len(self.regions)}"
        width, height = self.size
        self.regions.append({"id": region_id, "from_name": target[0], "to_name": target[1], "type": kind,
                             "value": value, "original_width": width, "original_height": height,
                             "image_rotation": 0, **extra})
        return region_id

    def _polygon(self, annotation: Annotation, label: str) -> None:
        values = list(annotation.polygon) or box_corners(annotation.box)
        if values:
            points = [[x * 100, y * 100] for x, y in zip(values[0::2], values[1::2])]
            self._add(TARGETS.polygon, "polygonlabels", {"points": points, "closed": True, "polygonlabels": [label]})

    def _keypoints(self, annotation: Annotation, parent: str) -> None:
        for index, label in enumerate(self.keypoint_labels):
            point = annotation.keypoints[index * self.dims:(index + 1) * self.dims]
            if len(point) < 2 or not _visible(point):
                continue  # Label Studio has no hidden points: a missing one is no region
            value = {"x": point[0] * 100, "y": point[1] * 100, "width": KEYPOINT_SIZE_PERCENT,
                     "keypointlabels": [label]}
            self._add(TARGETS.keypoint, "keypointlabels", value, parentID=parent)


def _visible(point: tuple[float, ...]) -> bool:
    return point[2] > 0 if len(point) > 2 else bool(point[0] or point[1])


def _rectangle(box: tuple[float, float, float, float]) -> dict:
    cx, cy, w, h = box
    return {"x": (cx - w / 2) * 100, "y": (cy - h / 2) * 100, "width": w * 100, "height": h * 100, "rotation": 0}


def label_config(source: ExportSource, *, keypoint_labels: list[str]) -> bytes:
    """The Label Studio labeling config the exported regions belong to."""
    view = Element("View")
    ElementTree.SubElement(view, "Image", name=TARGETS.rectangle[1], value="$image")
    controls = {"detect": [("RectangleLabels", TARGETS.rectangle)], "segment": [("PolygonLabels", TARGETS.polygon)],
                "pose": [("RectangleLabels", TARGETS.rectangle)], "classify": [("Choices", TARGETS.choices)]}
    for tag, (name, to_name) in controls[source.task]:
        _control(view, tag, name=name, to_name=to_name, labels=source.metadata.class_names)
    if keypoint_labels:
        _control(view, "KeyPointLabels", name=TARGETS.keypoint[0], to_name=TARGETS.keypoint[1],
                 labels=keypoint_labels)
    ElementTree.indent(view)
    return ElementTree.tostring(view, encoding="utf-8")


def _control(view: Element, tag: str, *, name: str, to_name: str, labels: list[str]) -> None:
    control = ElementTree.SubElement(view, tag, name=name, toName=to_name)
    child = "Choice" if tag == "Choices" else "Label"
    for label in labels:
        ElementTree.SubElement(control, child, value=label)


def config_labels(tree: SourceTree) -> dict[str, list[str]]:
    """Label order per control kind (``rectanglelabels``, ``choices``…) of the first label config in the upload."""
    import defusedxml.ElementTree as SafeElementTree  # only uploads that hold XML pay for it

    for rel in tree.with_suffix(".xml"):
        try:
            root = SafeElementTree.fromstring(tree.read_text(rel, max_bytes=CONFIG_MAX_BYTES))
        except Exception:  # a broken or hostile XML is just not a label config
            continue
        if root.tag == "View":
            labels: dict[str, list[str]] = {}
            for control in root.iter():
                child = "Choice" if control.tag == "Choices" else "Label"
                values = [item.get("value", "") for item in control.findall(child)]
                if values:
                    labels.setdefault(control.tag.lower(), []).extend(values)
            return labels
    return {}
