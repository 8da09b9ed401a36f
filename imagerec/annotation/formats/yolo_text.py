"""YOLO label-file text (Ultralytics' own layout, normalised 0..1), for ``format=yolo`` and the batch job.

    detect    cls cx cy w h
    segment   cls x1 y1 x2 y2 …          one line per polygon part; an instance whose mask vanished keeps its
                                         box as a 4-corner polygon, so the file stays a valid segment label file
              (shapes without polygon: box lines, a detect label file)
    pose      cls cx cy w h x y [v] …    kpt_dims 3 writes v=2 for a kept keypoint, a dropped one is 0 0 0
    classify  <class name>               the top-1 label: the class folder the image would go to

One image answers ``text/plain``; several (or any failed file) a zip of ``<stem>.txt`` files plus
``classes.txt`` (class names by id, as labelling tools read it) and ``errors.json`` when files failed.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from pathlib import PurePath

from starlette.responses import Response

from imagerec.annotation.formats.geometry import instance_xyxy, keypoint_count
from imagerec.annotation.schemas import FileError, ImageAnnotations, Instance, ModelSummary

LineWriter = Callable[[Instance, ImageAnnotations, int, int], list[str]]


def yolo_label_text(image: ImageAnnotations, *, task: str, kpt_dims: int = 3,
                    num_keypoints: int | None = None) -> str:
    """The label file for one image; pose writes ``num_keypoints`` per line (default: what the output shows)."""
    if task == "classify":
        return f"{image.labels[0].class_name}\n" if image.labels else ""
    count = num_keypoints if num_keypoints is not None else keypoint_count([image])
    lines = [line for instance in image.instances
             for line in LINE_WRITERS[task](instance, image, kpt_dims, count)]
    return "".join(f"{line}\n" for line in lines)


def render(*, model: ModelSummary, images: list[ImageAnnotations], errors: list[FileError]) -> Response:
    count = keypoint_count(images)  # one count for the whole batch: every line of a dataset has the same length
    dims = 3 if any(k.conf is not None for image in images for i in image.instances for k in i.keypoints or []) else 2
    texts = {image.file_name: yolo_label_text(image, task=model.task, kpt_dims=dims, num_keypoints=count)
             for image in images}
    if len(images) == 1 and not errors:
        stem = _stem(images[0].file_name)
        return Response(texts[images[0].file_name], media_type="text/plain",
                        headers={"Content-Disposition": f'inline; filename="{stem}.txt"'})
    return Response(_zip(model, images, texts, errors), media_type="application/zip",
                    headers={"Content-Disposition": 'attachment; filename="labels.zip"'})


def _zip(model: ModelSummary, images: list[ImageAnnotations], texts: dict[str, str],
         errors: list[FileError]) -> bytes:
    buffer = io.BytesIO()
    used: set[str] = {"classes", "errors"}
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for image in images:
            archive.writestr(f"{_unique(_stem(image.file_name), used)}.txt", texts[image.file_name])
        archive.writestr("classes.txt", "".join(f"{name}\n" for name in model.class_names))
        if errors:
            archive.writestr("errors.json", json.dumps([error.model_dump() for error in errors], indent=1))
    return buffer.getvalue()


def _stem(file_name: str) -> str:
    """The file's stem without any client-sent folders (no path tricks inside the zip)."""
    return PurePath(file_name.replace("\\", "/")).stem or "image"


def _unique(stem: str, used: set[str]) -> str:
    """``a.jpg`` and ``a.png`` in one request must not overwrite each other's labels."""
    name, counter = stem, 1
    while name in used:
        counter += 1
        name = f"{stem}_{counter}"
    used.add(name)
    return name


def _normalised_box(instance: Instance, image: ImageAnnotations) -> list[float] | None:
    extent = instance_xyxy(instance)
    if extent is None:
        return None
    x1, y1, x2, y2 = extent
    return [(x1 + x2) / 2 / image.width, (y1 + y2) / 2 / image.height, (x2 - x1) / image.width,
            (y2 - y1) / image.height]


def _line(class_id: int, values: list[float]) -> str:
    return " ".join([str(class_id)] + [_number(v) for v in values])


def _number(value: float) -> str:
    return str(value) if isinstance(value, int) else f"{min(max(value, 0.0), 1.0):.6f}"


def _detect_lines(instance: Instance, image: ImageAnnotations, _dims: int, _count: int) -> list[str]:
    box = _normalised_box(instance, image)
    return [_line(instance.class_id, box)] if box else []


def _segment_lines(instance: Instance, image: ImageAnnotations, dims: int, count: int) -> list[str]:
    if instance.polygons is None:
        return _detect_lines(instance, image, dims, count)
    polygons = instance.polygons or _box_polygon(instance)
    return [_line(instance.class_id,
                  [c / size for x, y in polygon for c, size in ((x, image.width), (y, image.height))])
            for polygon in polygons]


def _box_polygon(instance: Instance) -> list[list[list[float]]]:
    extent = instance_xyxy(instance)
    if extent is None:
        return []
    x1, y1, x2, y2 = extent
    return [[[x1, y1], [x2, y1], [x2, y2], [x1, y2]]]


def _pose_lines(instance: Instance, image: ImageAnnotations, dims: int, count: int) -> list[str]:
    box = _normalised_box(instance, image)
    if box is None:
        return []
    points: list[float] = [0.0] * (dims * count)
    for keypoint in instance.keypoints or []:
        if keypoint.index < count:
            values = [keypoint.x / image.width, keypoint.y / image.height] + ([2] if dims == 3 else [])
            points[dims * keypoint.index: dims * keypoint.index + dims] = values
    if dims == 3:  # a dropped keypoint's v is 0 (int), not 0.000000
        points[2::3] = [int(v) for v in points[2::3]]
    return [_line(instance.class_id, box + points)]


LINE_WRITERS: dict[str, LineWriter] = {"detect": _detect_lines, "segment": _segment_lines, "pose": _pose_lines}
