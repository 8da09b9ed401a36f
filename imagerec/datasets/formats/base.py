"""The internal representation every dataset format is read into and written from.

An importer turns a source folder into ``Samples`` (an image, its split, its objects in normalised coordinates)
plus ``Metadata``; ``staging.write_samples`` puts them in the Ultralytics layout under ``files/``, where the one
validator checks them whatever their format. An exporter reads a registered dataset back as ``Samples``
(``registered_samples``) and writes its format. Importers see the source only through a ``SourceTree``: every
file it lists or resolves lies inside the upload or the allowed roots (symlinks included), so a path named in a
user's annotation file can never lead elsewhere.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Protocol

from imagerec.datasets.layout import is_image_name
from imagerec.datasets.validation import Metadata
from imagerec.errors import Unprocessable

SPLITS = ("train", "val", "test")
# Folder and file-name words for a split, as exporting tools write them (Roboflow: "valid").
SPLIT_WORDS = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}
# Label Studio stores uploads as "<8 hex chars>-<original name>"
LS_PREFIX_LENGTH = 9


@dataclass
class Annotation:
    """One object. Coordinates are normalised to [0, 1] of the image size; ``box`` is (cx, cy, w, h)."""

    class_id: int
    box: tuple[float, float, float, float] | None = None
    polygon: tuple[float, ...] = ()  # x1 y1 x2 y2 … (segment)
    keypoints: tuple[float, ...] = ()  # x y [v] per keypoint, kpt_shape[1] values each (pose)
    difficult: bool = False  # VOC's flag; kept beside the labels, exported back


@dataclass
class Sample:
    """One image of a dataset. ``name`` is its path inside its split (``a.jpg``, ``sub/a.jpg``)."""

    name: str
    split: str | None  # train, val, test; None: the writer assigns one (see ``splitting``)
    image: Path | None  # the real file inside the source; None when the format names an image the source lacks
    annotations: list[Annotation] = field(default_factory=list)
    class_id: int | None = None  # classify: the image's class
    label_file: Path | None = None  # YOLO sources: the label text, copied verbatim so errors name its lines
    source: str = ""  # where the sample came from, for messages (annotation file and entry)


@dataclass
class ImportOptions:
    task: str
    kpt_shape: list[int] | None = None  # pose: given in the request when the format does not say
    flip_idx: list[int] | None = None


@dataclass
class Problems:
    """What reading found: errors (422, per file and line) and warnings (the dataset still registers)."""

    errors: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def error(self, file: str, message: str, line: int | None = None) -> None:
        self.errors.append({"file": file, "line": line, "message": message})

    def warn(self, message: str) -> None:
        self.warnings.append(message)


@dataclass
class Imported:
    metadata: Metadata
    samples: Iterable[Sample]  # may be a generator: the writer consumes it once, streaming


class SourceTree:
    """The files of a source folder, walked once and confined (see ``layout._Walker``).

    ``files`` maps each relative posix path to its real path. Lookups by name help formats that name images
    loosely (COCO's ``file_name``, Label Studio's upload URLs): by relative path, then by base name when unique.
    """

    def __init__(self, root: Path, files: dict[str, Path]):
        self.root = root
        self.files = files
        self._by_name: dict[str, list[str]] = {}
        self._by_unprefixed: dict[str, list[str]] = {}  # base names without Label Studio's upload prefix
        for rel in files:
            base = rel.rpartition("/")[2]
            self._by_name.setdefault(base, []).append(rel)
            self._by_unprefixed.setdefault(strip_ls_prefix(base), []).append(rel)

    @classmethod
    def walk(cls, root: Path, *, roots: list[Path] | None, problems: Problems) -> SourceTree:
        """Every file under ``root``; ``roots`` None (an upload) follows no symlink. Refused links are errors."""
        from imagerec.datasets.layout import walk_source  # layout's walker holds the symlink rules

        return cls(real_path(root), walk_source(root, roots=roots, errors=problems.errors))

    def get(self, rel: str) -> Path | None:
        return self.files.get(_normal(rel))

    def images(self) -> Iterator[str]:
        return (rel for rel in self.files if is_image_name(rel))

    def with_suffix(self, *suffixes: str) -> list[str]:
        return sorted(rel for rel in self.files if rel.lower().endswith(suffixes))

    def find_image(self, name: str, *, near: str = "") -> str | None:
        """The relative path of the image a format calls ``name``: as a path (from ``near``'s folder or the root),
        else by its base name (with or without Label Studio's upload prefix) when exactly one file has it."""
        name = name.replace("\\", "/")
        for candidate in (_join(near, name), _normal(name)):
            if candidate in self.files:
                return candidate
        base = name.rpartition("/")[2]
        for key in (base, strip_ls_prefix(base)):
            matches = self._by_name.get(key, [])
            if len(matches) == 1:
                return matches[0]
        unprefixed = self._by_unprefixed.get(base, [])
        return unprefixed[0] if len(unprefixed) == 1 else None

    def read_text(self, rel: str, *, max_bytes: int) -> str:
        real = self.files[_normal(rel)]
        if real.stat().st_size > max_bytes:
            raise FileTooLarge(f"{rel} is larger than {max_bytes} bytes")
        return real.read_text(encoding="utf-8-sig")


class FileTooLarge(Unprocessable, ValueError):
    """A source file past its format's size limit: a ValueError to detection (then it is not that format), a
    422 naming the file wherever a reader does not catch it."""


class Importer(Protocol):
    def detect(self, tree: SourceTree, *, task: str) -> str | None:
        """Why the source looks like this format (shown to the user), or None."""

    def read(self, tree: SourceTree, *, options: ImportOptions, problems: Problems) -> Imported:
        """Metadata and samples; problems go into ``problems`` (errors fail the import after reading)."""


def _normal(rel: str) -> str:
    parts = [part for part in PurePosixPath(rel.replace("\\", "/")).parts if part not in ("", ".", "/")]
    return "/".join(parts)


def _join(near: str, name: str) -> str:
    folder = near.rpartition("/")[0]
    return _normal(f"{folder}/{name}" if folder else name)


def strip_ls_prefix(base: str) -> str:
    head, dash, rest = base.partition("-")
    if dash and len(head) == LS_PREFIX_LENGTH - 1 and all(c in "0123456789abcdef" for c in head.lower()):
        return rest
    return base


def label_lines(sample: Sample, *, task: str) -> list[str]:
    """The YOLO label lines of a sample's annotations."""
    return [_label_line(annotation, task) for annotation in sample.annotations]


def _label_line(annotation: Annotation, task: str) -> str:
    values: list[float] = []
    if task == "segment":
        values = list(annotation.polygon) or box_corners(annotation.box)
    else:
        values = list(annotation.box or (0.0, 0.0, 0.0, 0.0))
        if task == "pose":
            values += list(annotation.keypoints)
    return " ".join([str(annotation.class_id), *(_number(value) for value in values)])


def box_corners(box: tuple[float, float, float, float] | None) -> list[float]:
    if box is None:
        return []
    cx, cy, w, h = box
    x1, y1, x2, y2 = cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2
    return [x1, y1, x2, y1, x2, y2, x1, y2]


def _number(value: float) -> str:
    return f"{value:.6f}".rstrip("0").rstrip(".") if value else "0"


def parse_label_text(text: str, *, task: str, kpt_shape: list[int] | None) -> list[Annotation]:
    """A (validated) YOLO label file as annotations; segment boxes are the polygon's extent."""
    annotations = []
    for line in text.splitlines():
        fields = line.split()
        if not fields:
            continue
        class_id, values = int(float(fields[0])), [float(value) for value in fields[1:]]
        if task == "segment":
            xs, ys = values[0::2], values[1::2]
            box = ((min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2, max(xs) - min(xs), max(ys) - min(ys))
            annotations.append(Annotation(class_id, box=box, polygon=tuple(values)))
        else:
            annotations.append(Annotation(class_id, box=tuple(values[:4]), keypoints=tuple(values[4:])))
    return annotations


def clip_unit(value: float) -> float:
    return min(1.0, max(0.0, value))


def box_from_corners(x1: float, y1: float, x2: float, y2: float, width: float, height: float
                     ) -> tuple[float, float, float, float]:
    """(cx, cy, w, h) normalised from pixel corners, clipped to the image."""
    left, right = clip_unit(min(x1, x2) / width), clip_unit(max(x1, x2) / width)
    top, bottom = clip_unit(min(y1, y2) / height), clip_unit(max(y1, y2) / height)
    return (left + right) / 2, (top + bottom) / 2, right - left, bottom - top


def real_path(path: Path) -> Path:
    return Path(os.path.realpath(path))


@dataclass
class ExportSource:
    """A registered dataset as exporters see it; ``samples()`` may be called more than once (one pass each)."""

    name: str
    task: str
    metadata: Metadata
    samples: Callable[[], Iterator[Sample]]
    work_dir: Path | None = None  # inside the data dir: where an exporter may spool what it assembles


class ExportSink(Protocol):
    """Where an exporter writes: members of the zip being streamed to the user."""

    def add_file(self, arcname: str, path: Path) -> None: ...

    def add_bytes(self, arcname: str, data: bytes) -> None: ...


class Exporter(Protocol):
    def __call__(self, source: ExportSource, sink: ExportSink) -> None: ...
