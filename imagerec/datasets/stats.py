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
import os
from bisect import bisect_right
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from imagerec.datasets.formats.base import parse_label_text
from imagerec.datasets.layout import is_image_name
from imagerec.datasets.validation import Metadata

SPLITS = ("train", "val", "test")
SIZE_EDGES = (0.0, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.0)
ASPECT_EDGES = (0.0, 1 / 8, 1 / 4, 1 / 2, 1.0, 2.0, 4.0, 8.0, math.inf)
TINY_SIZE = 0.01
TINY_SIDE = 0.005
NEAR_DUPLICATE_IOU = 0.9
MAX_EXAMPLES = 3
HASH_CHUNK = 1024 * 1024


# --- the result -----------------------------------------------------------------------------------------------


@dataclass
class Histogram:
    edges: tuple[float, ...]
    counts: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.counts = self.counts or [0] * (len(self.edges) - 1)

    def add(self, value: float) -> None:
        index = bisect_right(self.edges, value) - 1
        self.counts[min(max(index, 0), len(self.counts) - 1)] += 1

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

    def as_dict(self) -> dict:
        """The JSON-serialisable summary; the hashes are left out (they are per image, not a statistic)."""
        result: dict = {"splits": {name: split.as_dict() for name, split in self.splits.items()}}
        if self.boxes is not None:
            result["boxes"] = {name: boxes.as_dict() for name, boxes in self.boxes.items()}
        result["warnings"] = list(self.warnings)
        return result


@dataclass
class _Tally:
    """A count of findings with the first few examples, so a warning never lists every object."""

    count: int = 0
    entries: int = 0  # examples offered; one may stand for several counted objects (a group of copies)
    examples: list[str] = field(default_factory=list)

    def add(self, example: str, count: int = 1) -> None:
        self.count += count
        self.entries += 1
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append(example)


@dataclass
class _Findings:
    tiny: _Tally = field(default_factory=_Tally)
    tiny_per_class: dict[str, int] = field(default_factory=dict)
    near_duplicates: _Tally = field(default_factory=_Tally)


# --- computing ------------------------------------------------------------------------------------------------


def compute_stats(files_dir: Path, *, task: str, metadata: Metadata,
                  hasher: Callable[[Path], str] | None = None) -> DatasetStats:
    """Statistics, warnings and content hashes of the dataset staged under ``files_dir``; ``hasher`` (default
    ``file_sha256``) lets a new version take its parent's hashes for the files it links."""
    hashes: dict[str, str] = {}
    hasher = hasher or file_sha256
    splits: dict[str, SplitStats] = {}
    boxes: dict[str, BoxStats] | None = None if task == "classify" else {}
    findings = _Findings()
    for split in SPLITS:
        split_dir = files_dir / split if task == "classify" else files_dir / "images" / split
        if not split_dir.is_dir():
            continue
        splits[split] = SplitStats(classes={name: ClassCounts() for name in metadata.class_names})
        if boxes is None:
            _classify_split(files_dir, split_dir, splits[split], hashes, hasher)
        else:
            boxes[split] = BoxStats(tiny=dict.fromkeys(metadata.class_names, 0))
            _labelled_split(files_dir, split, task=task, metadata=metadata,
                            split_stats=splits[split], box_stats=boxes[split], findings=findings, hashes=hashes,
                            hasher=hasher)
    warnings = _duplicate_warnings(hashes) + _class_warnings(splits, metadata.class_names) + _box_warnings(findings)
    return DatasetStats(splits=splits, boxes=boxes, warnings=warnings, image_hashes=hashes)


def _classify_split(files_dir: Path, split_dir: Path, split_stats: SplitStats, hashes: dict[str, str],
                    hasher: Callable[[Path], str]) -> None:
    for image in _images(split_dir):
        hashes[image.relative_to(files_dir).as_posix()] = hasher(image)
        class_name = image.relative_to(split_dir).parts[0]
        counts = split_stats.classes.setdefault(class_name, ClassCounts())
        counts.images += 1
        counts.instances += 1
        split_stats.images += 1
        split_stats.instances += 1


def _labelled_split(files_dir: Path, split: str, *, task: str, metadata: Metadata, split_stats: SplitStats,
                    box_stats: BoxStats, findings: _Findings, hashes: dict[str, str],
                    hasher: Callable[[Path], str]) -> None:
    images_dir, labels_dir = files_dir / "images" / split, files_dir / "labels" / split
    for image in _images(images_dir):
        hashes[image.relative_to(files_dir).as_posix()] = hasher(image)
        label = labels_dir / image.relative_to(images_dir).with_suffix(".txt")
        objects = _read_objects(label, task=task, metadata=metadata) if label.is_file() else []
        split_stats.images += 1
        split_stats.instances += len(objects)
        split_stats.backgrounds += int(not objects)
        for class_name in {obj.class_name for obj in objects}:
            split_stats.classes.setdefault(class_name, ClassCounts()).images += 1
        label_rel = label.relative_to(files_dir).as_posix()
        for obj in objects:
            split_stats.classes.setdefault(obj.class_name, ClassCounts()).instances += 1
            _add_box(obj, box_stats=box_stats, findings=findings, label_rel=label_rel)
        for first, second in _near_duplicate_pairs(objects):
            findings.near_duplicates.add(f"{label_rel} lines {first} and {second}")


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


def _add_box(obj: _Object, *, box_stats: BoxStats, findings: _Findings, label_rel: str) -> None:
    _, _, w, h = obj.box
    size = math.sqrt(max(w, 0.0) * max(h, 0.0))
    box_stats.size.add(size)
    box_stats.aspect.add(w / h if h > 0 else math.inf)
    if size < TINY_SIZE or min(w, h) < TINY_SIDE:
        box_stats.tiny[obj.class_name] = box_stats.tiny.get(obj.class_name, 0) + 1
        findings.tiny_per_class[obj.class_name] = findings.tiny_per_class.get(obj.class_name, 0) + 1
        findings.tiny.add(f"{label_rel} line {obj.line}")


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


def _images(folder: Path) -> Iterator[Path]:
    """Image files under ``folder`` in sorted order, one directory listing held at a time.

    Staged server datasets hold symlinks; linked folders are followed, each real folder once (no loops)."""
    seen: set[str] = set()
    for root, dirs, files in os.walk(folder, followlinks=True):
        real = os.path.realpath(root)
        if real in seen:
            dirs.clear()
            continue
        seen.add(real)
        dirs.sort()
        for name in sorted(files):
            if is_image_name(name):
                yield Path(root) / name


def file_sha256(path: Path) -> str:
    """The sha256 hex digest of a file's content, read through a symlink, 1 MB at a time."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


# --- warnings -------------------------------------------------------------------------------------------------


def _duplicate_warnings(hashes: dict[str, str]) -> list[str]:
    groups: dict[str, list[str]] = {}
    for rel in sorted(hashes):
        groups.setdefault(hashes[rel], []).append(rel)
    duplicates = sorted((paths for paths in groups.values() if len(paths) > 1), key=lambda paths: paths[0])
    return _leakage_warnings(duplicates) + _within_split_warnings(duplicates)


def _split_of(rel: str) -> str:
    parts = rel.split("/")
    return parts[1] if parts[0] == "images" else parts[0]


def _leakage_warnings(duplicates: list[list[str]]) -> list[str]:
    """The same content in two splits: the model is evaluated on images it trained on."""
    warnings = []
    for index, first_split in enumerate(SPLITS):
        for second_split in SPLITS[index + 1:]:
            tally = _Tally()
            for paths in duplicates:
                first = [rel for rel in paths if _split_of(rel) == first_split]
                second = [rel for rel in paths if _split_of(rel) == second_split]
                if first and second:
                    tally.add(f"{first[0]} = {second[0]}")
            if tally.count:
                verb = _agree(tally.count, "appears", "appear")
                warnings.append(f"{_count(tally.count, 'image')} {verb} in both {first_split} and {second_split} "
                                f"(same content): {_examples(tally)}")
    return warnings


def _within_split_warnings(duplicates: list[list[str]]) -> list[str]:
    """Copies inside one split only weigh those images more; milder than leakage."""
    warnings = []
    for split in SPLITS:
        tally = _Tally()
        for paths in duplicates:
            inside = [rel for rel in paths if _split_of(rel) == split]
            if len(inside) > 1:
                tally.add(" = ".join(inside[:2]) + (" = …" if len(inside) > 2 else ""), count=len(inside) - 1)
        if tally.count:
            warnings.append(f"{split}: {_count(tally.count, 'image')} {_agree(tally.count, 'duplicates', 'duplicate')}"
                            f" another image of the same split (same content): {_examples(tally)}")
    return warnings


def _class_warnings(splits: dict[str, SplitStats], class_names: list[str]) -> list[str]:
    warnings = []
    if "train" in splits and "val" in splits:
        absent = [name for name, counts in splits["train"].classes.items()
                  if counts.instances and not splits["val"].classes.get(name, ClassCounts()).instances]
        if absent:
            warnings.append(f"{_count(len(absent), 'class', 'classes')} {_agree(len(absent), 'has', 'have')} "
                            f"instances in train but none in val (not evaluated): {_names(absent)}")
    empty = [name for name in class_names if not any(split.classes[name].instances for split in splits.values())]
    if empty:
        warnings.append(f"{_count(len(empty), 'class', 'classes')} {_agree(len(empty), 'has', 'have')} "
                        f"no instances in any split: {_names(empty)}")
    return warnings


def _box_warnings(findings: _Findings) -> list[str]:
    warnings = []
    if findings.tiny.count:
        per_class = sorted(findings.tiny_per_class.items(), key=lambda item: (-item[1], item[0]))
        classes = ", ".join(f"{name} {count}" for name, count in per_class[:MAX_EXAMPLES])
        more = ", …" if len(per_class) > MAX_EXAMPLES else ""
        warnings.append(
            f"{_count(findings.tiny.count, 'tiny box', 'tiny boxes')} (side under {TINY_SIZE:.0%} of the image, "
            f"or width or height under {TINY_SIDE:.1%}), per class: {classes}{more}; e.g. {_examples(findings.tiny)}"
        )
    if findings.near_duplicates.count:
        count = findings.near_duplicates.count
        warnings.append(f"{_count(count, 'pair')} of boxes of the same class in one image overlap with IoU > "
                        f"{NEAR_DUPLICATE_IOU} (one object labelled twice?): {_examples(findings.near_duplicates)}")
    return warnings


def _count(count: int, singular: str, plural: str | None = None) -> str:
    return f"{count} {singular if count == 1 else plural or singular + 's'}"


def _agree(count: int, singular: str, plural: str) -> str:
    return singular if count == 1 else plural


def _examples(tally: _Tally) -> str:
    return ", ".join(tally.examples) + (", …" if tally.entries > len(tally.examples) else "")


def _names(names: list[str]) -> str:
    return ", ".join(names[:MAX_EXAMPLES]) + (", …" if len(names) > MAX_EXAMPLES else "")
