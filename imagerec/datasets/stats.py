"""What a registered dataset holds, computed once when it registers: counts, box shapes, and what looks wrong.

``compute_stats`` reads the staged Ultralytics layout under ``files_dir`` one image at a time (sorted, so the result
is the same on every run) and keeps only aggregates plus one small record per image, its content hash
(``DatasetStats.image_hashes``, which dataset versions reuse). ``DatasetStats.as_dict()`` is what is stored beside
the dataset and served by ``GET /api/datasets/{id}/stats``::

    splits    per split present: images, instances, backgrounds (images without a label), and per class name
              {images, instances}. Classify: every image is one instance of its folder's class.
    boxes     (not for classify) per split: histograms of box size and aspect ratio, {"edges", "counts"}, and the
              number of tiny boxes per class name.
    warnings  aggregated messages, each with a count and at most 3 examples.

Histograms: bin ``i`` counts values ``edges[i] <= v < edges[i + 1]``; a value beyond the last edge falls in the
last bin. ``null`` as an edge stands for infinity (JSON has none).

- size is ``sqrt(w * h)`` of the normalised box, the box's side as a fraction of the image side, with edges
  ``SIZE_EDGES`` (doubling from 1 %, as object sizes spread over orders of magnitude);
- aspect is ``w / h`` with log2-spaced edges ``ASPECT_EDGES`` (a box with ``h == 0`` is infinitely wide).

A box is *tiny* when ``sqrt(w * h) < TINY_SIZE`` (1 % of the image side) or either side is under ``TINY_SIDE``
(0.5 %): at the usual 640-pixel training size such a box is a few pixels, which YOLO barely learns and often drops
after augmentation. Two boxes of one class in one image with IoU above ``NEAR_DUPLICATE_IOU`` are most likely one
object labelled twice.

The dataset has passed ``validation.validate`` before this runs, so label lines are well formed; the rare line
that still does not parse is skipped rather than failing a registration that already succeeded.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from imagerec.datasets.formats.base import parse_label_text
from imagerec.datasets.inheritance import Inheritance, key_of, label_path
from imagerec.datasets.layout import files_under, is_image_name
from imagerec.datasets.stats_warnings import NEAR_DUPLICATE_IOU, TINY_SIDE, TINY_SIZE, Findings, warnings_of
from imagerec.datasets.validation import Metadata

SPLITS = ("train", "val", "test")
SIZE_EDGES = (0.0, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.0)
ASPECT_EDGES = (0.0, 1 / 8, 1 / 4, 1 / 2, 1.0, 2.0, 4.0, 8.0, math.inf)
HASH_CHUNK = 1024 * 1024


# --- the result -----------------------------------------------------------------------------------------------


@dataclass
class Histogram:
    edges: tuple[float, ...]
    counts: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.counts = self.counts or [0] * (len(self.edges) - 1)

    def add(self, value: float, sign: int = 1) -> None:
        index = bisect_right(self.edges, value) - 1
        self.counts[min(max(index, 0), len(self.counts) - 1)] += sign

    def as_dict(self) -> dict:
        return {"edges": [None if math.isinf(edge) else edge for edge in self.edges], "counts": list(self.counts)}


@dataclass
class ClassCounts:
    images: int = 0
    instances: int = 0


@dataclass
class SplitStats:
    images: int = 0
    instances: int = 0
    backgrounds: int = 0
    classes: dict[str, ClassCounts] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"images": self.images, "instances": self.instances, "backgrounds": self.backgrounds,
                "classes": {name: vars(counts).copy() for name, counts in self.classes.items()}}


@dataclass
class BoxStats:
    size: Histogram = field(default_factory=lambda: Histogram(SIZE_EDGES))
    aspect: Histogram = field(default_factory=lambda: Histogram(ASPECT_EDGES))
    tiny: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"size": self.size.as_dict(), "aspect": self.aspect.as_dict(), "tiny": dict(self.tiny)}


@dataclass
class DatasetStats:
    splits: dict[str, SplitStats]
    boxes: dict[str, BoxStats] | None  # None for classify
    warnings: list[str]
    image_hashes: dict[str, str]  # path relative to files_dir (posix) -> sha256 hex of the image's content
    findings: Findings = field(default_factory=Findings)

    def as_dict(self) -> dict:
        """The JSON-serialisable summary; the hashes are left out (they are per image, not a statistic)."""
        result: dict = {"splits": {name: split.as_dict() for name, split in self.splits.items()}}
        if self.boxes is not None:
            result["boxes"] = {name: boxes.as_dict() for name, boxes in self.boxes.items()}
        result["warnings"] = list(self.warnings)
        result["findings"] = self.findings.as_dict()
        return result


# --- computing ------------------------------------------------------------------------------------------------


def compute_stats(files_dir: Path, *, task: str, metadata: Metadata) -> DatasetStats:
    """Statistics, warnings and content hashes of the dataset staged under ``files_dir``."""
    counter = _Counter(files_dir, task=task, metadata=metadata)
    for split in SPLITS:
        if counter.split_dir(split).is_dir():
            counter.open_split(split)
            counter.count_split(split)
    return counter.result()


def update_stats(files_dir: Path, *, task: str, metadata: Metadata, inherited: Inheritance) -> DatasetStats:
    """A new version's stats: its parent's, less what the parent counted for the keys it no longer holds as they
    were (read from the parent's files), plus what it holds that the parent did not (read from ``files_dir``).
    Gives the same counts as ``compute_stats``; the warnings' examples may differ."""
    counter = _Counter.from_parent(files_dir, task=task, metadata=metadata, inherited=inherited)
    for key in inherited.gone():
        counter.count_parent_key(key, sign=-1)
    counter.hashes.update(inherited.inherited_hashes())
    for split in SPLITS:
        if not counter.split_dir(split).is_dir():
            counter.drop_split(split)
            continue
        counter.open_split(split)
        counter.count_split(split, skip=inherited.holds)
    return counter.result()


class _Counter:
    """The running sums of one computation; ``sign`` -1 takes back what an image added."""

    def __init__(self, files_dir: Path, *, task: str, metadata: Metadata, inherited: Inheritance | None = None):
        self.files_dir, self.task, self.metadata, self.inherited = files_dir, task, metadata, inherited
        self.splits: dict[str, SplitStats] = {}
        self.boxes: dict[str, BoxStats] | None = None if task == "classify" else {}
        self.findings = Findings()
        self.hashes: dict[str, str] = {}

    @classmethod
    def from_parent(cls, files_dir: Path, *, task: str, metadata: Metadata, inherited: Inheritance) -> _Counter:
        counter = cls(files_dir, task=task, metadata=metadata, inherited=inherited)
        raw = inherited.parent_stats
        for split, values in raw["splits"].items():
            classes = {name: ClassCounts(**counts) for name, counts in values["classes"].items()}
            counter.splits[split] = SplitStats(values["images"], values["instances"], values["backgrounds"], classes)
        if counter.boxes is not None:
            for split, values in raw["boxes"].items():
                counter.boxes[split] = BoxStats(Histogram(SIZE_EDGES, list(values["size"]["counts"])),
                                                Histogram(ASPECT_EDGES, list(values["aspect"]["counts"])),
                                                dict(values["tiny"]))
        tiny_per_class: dict[str, int] = {}
        for box_stats in (counter.boxes or {}).values():
            for name, count in box_stats.tiny.items():
                tiny_per_class[name] = tiny_per_class.get(name, 0) + count
        counter.findings = Findings.from_dict(raw["findings"], {n: c for n, c in tiny_per_class.items() if c})
        return counter

    def split_dir(self, split: str) -> Path:
        return self.files_dir / split if self.task == "classify" else self.files_dir / "images" / split

    def open_split(self, split: str) -> None:
        split_stats = self.splits.setdefault(split, SplitStats())
        for name in self.metadata.class_names:
            split_stats.classes.setdefault(name, ClassCounts())
        if self.boxes is not None:
            box_stats = self.boxes.setdefault(split, BoxStats())
            for name in self.metadata.class_names:
                box_stats.tiny.setdefault(name, 0)

    def drop_split(self, split: str) -> None:
        self.splits.pop(split, None)
        if self.boxes is not None:
            self.boxes.pop(split, None)

    def count_split(self, split: str, skip: Callable[[str], bool] | None = None) -> None:
        split_dir = self.split_dir(split)
        prefix = split_dir.relative_to(self.files_dir).as_posix()
        for rel_in_split in files_under(split_dir):
            if not is_image_name(rel_in_split):
                continue
            rel = f"{prefix}/{rel_in_split}"
            key = key_of(rel, task=self.task)
            if skip is not None and skip(key):
                continue
            image = split_dir / rel_in_split
            known = self.inherited.image_hash(image) if self.inherited is not None else None
            self.hashes[rel] = known or file_sha256(image)  # a relabelled image is still its parent's inode
            if self.task == "classify":
                self._count_classify(split, rel_in_split.partition("/")[0], sign=1)
            else:
                self._count_labelled(split, self.files_dir / label_path(key), label_rel=label_path(key), sign=1)

    def count_parent_key(self, key: str, *, sign: int) -> None:
        split = key.partition("/")[0]
        if split not in self.splits:
            self.open_split(split)
        if self.task == "classify":
            self._count_classify(split, self.inherited.entry(key)[1], sign=sign)  # the label is the class
        else:
            label = self.inherited.parent_files / label_path(key)
            self._count_labelled(split, label, label_rel=label_path(key), sign=sign)

    def _count_classify(self, split: str, class_name: str, *, sign: int) -> None:
        split_stats = self.splits[split]
        counts = split_stats.classes.setdefault(class_name, ClassCounts())
        counts.images += sign
        counts.instances += sign
        split_stats.images += sign
        split_stats.instances += sign

    def _count_labelled(self, split: str, label: Path, *, label_rel: str, sign: int) -> None:
        objects = _read_objects(label, task=self.task, metadata=self.metadata) if label.is_file() else []
        split_stats, box_stats = self.splits[split], self.boxes[split]
        split_stats.images += sign
        split_stats.instances += sign * len(objects)
        split_stats.backgrounds += sign * int(not objects)
        for class_name in {obj.class_name for obj in objects}:
            split_stats.classes.setdefault(class_name, ClassCounts()).images += sign
        for obj in objects:
            split_stats.classes.setdefault(obj.class_name, ClassCounts()).instances += sign
            _add_box(obj, box_stats=box_stats, findings=self.findings, label_rel=label_rel, sign=sign)
        for first, second in _near_duplicate_pairs(objects):
            if sign > 0:
                self.findings.near_duplicates.add(f"{label_rel} lines {first} and {second}")
            else:
                self.findings.near_duplicates.remove(label_rel)

    def result(self) -> DatasetStats:
        splits = {split: self.splits[split] for split in SPLITS if split in self.splits}
        boxes = None if self.boxes is None else {split: self.boxes[split] for split in SPLITS if split in self.boxes}
        warnings = warnings_of(self.hashes, splits, self.metadata.class_names, self.findings)
        return DatasetStats(splits=splits, boxes=boxes, warnings=warnings,
                            image_hashes=dict(sorted(self.hashes.items())), findings=self.findings)


@dataclass(frozen=True)
class _Object:
    line: int
    class_name: str
    box: tuple[float, float, float, float]  # cx, cy, w, h normalised

    def corners(self) -> tuple[float, float, float, float]:
        cx, cy, w, h = self.box
        return cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2


def _read_objects(label: Path, *, task: str, metadata: Metadata) -> list[_Object]:
    """The objects of one label file with their line numbers (which parse_label_text does not keep)."""
    objects = []
    for number, line in enumerate(label.read_text(encoding="utf-8-sig").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            annotations = parse_label_text(line, task=task, kpt_shape=metadata.kpt_shape)
        except (ValueError, IndexError):  # validated already; see the module docstring
            continue
        for annotation in annotations:
            if annotation.box is not None and len(annotation.box) == 4:
                name = _class_name(annotation.class_id, metadata.class_names)
                objects.append(_Object(number, name, tuple(annotation.box)))
    return objects


def _class_name(class_id: int, class_names: list[str]) -> str:
    return class_names[class_id] if 0 <= class_id < len(class_names) else str(class_id)


def _add_box(obj: _Object, *, box_stats: BoxStats, findings: Findings, label_rel: str, sign: int) -> None:
    _, _, w, h = obj.box
    size = math.sqrt(max(w, 0.0) * max(h, 0.0))
    box_stats.size.add(size, sign)
    box_stats.aspect.add(w / h if h > 0 else math.inf, sign)
    if size < TINY_SIZE or min(w, h) < TINY_SIDE:
        box_stats.tiny[obj.class_name] = box_stats.tiny.get(obj.class_name, 0) + sign
        findings.tiny_per_class[obj.class_name] = findings.tiny_per_class.get(obj.class_name, 0) + sign
        if not findings.tiny_per_class[obj.class_name]:
            del findings.tiny_per_class[obj.class_name]
        if sign > 0:
            findings.tiny.add(f"{label_rel} line {obj.line}")
        else:
            findings.tiny.remove(label_rel)


def _near_duplicate_pairs(objects: list[_Object]) -> list[tuple[int, int]]:
    """Line pairs of same-class boxes with IoU above the threshold.

    Boxes are swept in order of their left edge, so only boxes that overlap horizontally are compared; an image
    with hundreds of objects then costs far less than all pairs."""
    ordered = sorted(objects, key=lambda obj: (obj.corners()[0], obj.line))
    pairs = []
    for index, first in enumerate(ordered):
        right = first.corners()[2]
        for second in itertools.islice(ordered, index + 1, None):
            if second.corners()[0] >= right:
                break
            if first.class_name == second.class_name and _iou(first, second) > NEAR_DUPLICATE_IOU:
                pairs.append((min(first.line, second.line), max(first.line, second.line)))
    return sorted(pairs)


def _iou(first: _Object, second: _Object) -> float:
    ax1, ay1, ax2, ay2 = first.corners()
    bx1, by1, bx2, by2 = second.corners()
    inter = max(0.0, min(ax2, bx2) - max(ax1, bx1)) * max(0.0, min(ay2, by2) - max(ay1, by1))
    union = (ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - inter
    return inter / union if union > 0 else 0.0


def file_sha256(path: Path) -> str:
    """The sha256 hex digest of a file's content, read through a symlink, 1 MB at a time."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()

