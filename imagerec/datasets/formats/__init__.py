"""Dataset formats: one importer and one exporter per ``DatasetFormat``, picked from ``FORMATS``.

Each format module exposes ``IMPORTER`` (``detect`` and ``read``, see ``base.Importer``) and ``export``
(``base.Exporter``). Modules are named as strings and imported on first use, so the API process loads only the
formats it meets. Detection asks each format that can hold the task, in ``DETECTION_ORDER``, and the first one to
give a reason wins; the answer tells the user which format was picked and why.
"""

from __future__ import annotations

import importlib
from enum import StrEnum
from types import ModuleType

from imagerec.datasets.formats.base import SourceTree
from imagerec.errors import Unprocessable


class DatasetFormat(StrEnum):
    yolo = "yolo"  # Ultralytics: a data.yaml in any layout it describes, or classes.txt (LabelImg, CVAT YOLO 1.1)
    coco = "coco"  # COCO JSON: boxes, polygons and RLE, keypoints
    voc = "voc"  # Pascal VOC XML (CVAT, LabelImg): boxes
    labelstudio = "labelstudio"  # Label Studio JSON and JSON-MIN exports
    imagefolder = "imagefolder"  # classification: <split>/<class>/<image>, or <class>/<image> (then split)


FORMATS: dict[DatasetFormat, str] = {
    DatasetFormat.yolo: "imagerec.datasets.formats.yolo",
    DatasetFormat.coco: "imagerec.datasets.formats.coco",
    DatasetFormat.voc: "imagerec.datasets.formats.voc",
    DatasetFormat.labelstudio: "imagerec.datasets.formats.labelstudio",
    DatasetFormat.imagefolder: "imagerec.datasets.formats.imagefolder",
}

# Which formats can hold which task (import and export).
TASKS: dict[DatasetFormat, frozenset[str]] = {
    DatasetFormat.yolo: frozenset({"detect", "segment", "pose", "classify"}),
    DatasetFormat.coco: frozenset({"detect", "segment", "pose"}),
    DatasetFormat.voc: frozenset({"detect"}),
    DatasetFormat.labelstudio: frozenset({"detect", "segment", "pose", "classify"}),
    DatasetFormat.imagefolder: frozenset({"classify"}),
}

# Annotation files first: a COCO or Label Studio export may also carry a stray classes.txt or image folders.
DETECTION_ORDER = (DatasetFormat.coco, DatasetFormat.labelstudio, DatasetFormat.voc, DatasetFormat.yolo,
                   DatasetFormat.imagefolder)


def module(fmt: DatasetFormat) -> ModuleType:
    return importlib.import_module(FORMATS[fmt])


def require_task(fmt: DatasetFormat, task: str) -> None:
    if task not in TASKS[fmt]:
        holds = ", ".join(sorted(TASKS[fmt]))
        raise Unprocessable(f"format {fmt} cannot hold a {task} dataset (it holds {holds})")


def detect(tree: SourceTree, *, task: str) -> tuple[DatasetFormat, str]:
    """The source's format and the reason it was picked; 422 when nothing fits."""
    for fmt in DETECTION_ORDER:
        if task in TASKS[fmt]:
            reason = module(fmt).IMPORTER.detect(tree, task=task)
            if reason:
                return fmt, reason
    names = ", ".join(fmt for fmt in DETECTION_ORDER if task in TASKS[fmt])
    raise Unprocessable(f"the {task} dataset's format was not recognised (looked for {names}); "
                        "give 'format' or see the docs for the layouts each format accepts")
