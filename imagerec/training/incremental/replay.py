"""The replay set: old images trained again next to the new data, so the model keeps seeing its old classes.

``scan_split`` lists a registered dataset's images with the (merged) classes each holds; ``replay_budget`` says
how many to take; ``select_replay`` picks them. Two strategies, picked from ``STRATEGIES`` by name:

- ``random``: a seeded uniform sample;
- ``class_balanced``: every class first gets a guaranteed minimum, then the budget goes to whichever class has
  the fewest images so far, so rare old classes are not drowned by common ones.

Background images (no classes) are taken only when nothing else is left: they teach nothing about old classes.
"""

from __future__ import annotations

import heapq
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from imagerec.datasets.layout import is_image_name


@dataclass(frozen=True)
class SourceImage:
    image: Path
    label: Path | None  # YOLO label file; None for classify or a background image
    classes: frozenset[int]  # merged class ids present in the image (classify: its one class)
    source_id: int  # the dataset it comes from


@dataclass(frozen=True)
class ReplaySelection:
    images: list[SourceImage]
    per_class: dict[int, int]  # merged class id -> number of selected images containing it


# --- scanning ---------------------------------------------------------------------------------------------------

def scan_split(files_dir: Path, split: str, task: str, class_map: list[int], source_id: int) -> list[SourceImage]:
    """Every image of ``split`` in a registered dataset's ``files_dir``, sorted by path, classes in merged ids.

    ``class_map[dataset id]`` is the merged id. A classify dataset's ids are its sorted train class folders, as
    registration names them. A label file that is missing or empty makes a background (``label`` None).
    """
    if task == "classify":
        return _scan_classify(files_dir, split, class_map, source_id)
    images_dir, labels_dir = files_dir / "images" / split, files_dir / "labels" / split
    scanned = []
    for image in _image_files(images_dir):
        label = labels_dir / image.relative_to(images_dir).with_suffix(".txt")
        classes = _label_classes(label, class_map) if label.is_file() else frozenset()
        scanned.append(SourceImage(image, label if classes else None, classes, source_id))
    return scanned


def _scan_classify(files_dir: Path, split: str, class_map: list[int], source_id: int) -> list[SourceImage]:
    train_dir = files_dir / "train"
    dataset_ids = {name: index for index, name in enumerate(sorted(p.name for p in train_dir.iterdir() if p.is_dir()))}
    scanned = []
    for image in _image_files(files_dir / split):
        folder = image.relative_to(files_dir / split).parts[0]
        if folder not in dataset_ids:
            raise ValueError(f"{image}: class folder {folder!r} is not among the train classes")
        merged_id = _mapped(dataset_ids[folder], class_map, where=str(image))
        scanned.append(SourceImage(image, None, frozenset({merged_id}), source_id))
    return scanned


def _image_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.rglob("*") if is_image_name(p.name) and not p.name.startswith("."))


def _label_classes(label: Path, class_map: list[int]) -> frozenset[int]:
    classes = set()
    for number, line in enumerate(label.read_text().splitlines(), start=1):
        if line.strip():
            classes.add(_mapped(class_id_of(line), class_map, where=f"{label}:{number}"))
    return frozenset(classes)


def class_id_of(line: str) -> int:
    """The leading class id of a YOLO label line ("3" or "3.0"); ValueError when it is not a whole number."""
    token = line.split()[0]
    value = float(token)
    if not value.is_integer():
        raise ValueError(f"class id {token!r} is not a whole number")
    return int(value)


def _mapped(class_id: int, class_map: list[int], *, where: str) -> int:
    if not 0 <= class_id < len(class_map):
        raise ValueError(f"{where}: class id {class_id} is outside the dataset's {len(class_map)} classes")
    return class_map[class_id]


# --- budget -----------------------------------------------------------------------------------------------------

def replay_budget(*, max_images: int | None, ratio: float | None, new_count: int) -> int:
    """How many old images to replay: ``max_images`` when given, else ``ratio`` × ``new_count`` (at least 1 when
    ``ratio`` > 0), else 0 (no replay)."""
    if max_images is not None:
        if max_images < 0:
            raise ValueError(f"max_images must be >= 0, got {max_images}")
        return max_images
    if ratio is None or ratio == 0:
        return 0
    if ratio < 0:
        raise ValueError(f"ratio must be >= 0, got {ratio}")
    return max(1, round(ratio * new_count))


# --- selection --------------------------------------------------------------------------------------------------

def select_replay(images: list[SourceImage], *, budget: int, min_per_class: int, strategy: str,
                  seed: int) -> ReplaySelection:
    """Pick up to ``budget`` images with ``strategy`` (a key of ``STRATEGIES``); deterministic for a ``seed``.

    ``class_balanced`` first guarantees ``min_per_class`` images to every class with that many candidates, even
    when that takes more than ``budget``: a class replayed below the minimum is the forgetting replay exists to
    prevent, and the overshoot is bounded by ``min_per_class`` × classes. A ``budget`` of 0 means no replay.
    ``random`` ignores ``min_per_class``.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown replay strategy {strategy!r}; expected one of {sorted(STRATEGIES)}")
    if budget <= 0 or not images:
        return ReplaySelection([], {})
    rng = random.Random(seed)
    labelled = [image for image in images if image.classes]
    backgrounds = [image for image in images if not image.classes]
    chosen = STRATEGIES[strategy](labelled, budget, min_per_class, rng)
    if len(chosen) < budget:
        chosen += rng.sample(backgrounds, min(budget - len(chosen), len(backgrounds)))
    return ReplaySelection(chosen, _per_class(chosen))


def _random(labelled: list[SourceImage], budget: int, min_per_class: int,
            rng: random.Random) -> list[SourceImage]:
    return rng.sample(labelled, min(budget, len(labelled)))


def _class_balanced(labelled: list[SourceImage], budget: int, min_per_class: int,
                    rng: random.Random) -> list[SourceImage]:
    picker = _BalancedPicker(labelled, rng)
    picker.guarantee(min_per_class)
    picker.fill(budget)
    return picker.chosen


STRATEGIES: dict[str, Callable[[list[SourceImage], int, int, random.Random], list[SourceImage]]] = {
    "random": _random,
    "class_balanced": _class_balanced,
}


class _BalancedPicker:
    """Candidates per class in a seeded random order, and how many chosen images hold each class."""

    def __init__(self, labelled: list[SourceImage], rng: random.Random) -> None:
        self.rng = rng
        self.chosen: list[SourceImage] = []
        self.taken: set[int] = set()  # indexes into ``labelled``
        self.counts: Counter[int] = Counter()
        self.labelled = labelled
        self.queues: dict[int, list[int]] = {}
        for index, image in enumerate(labelled):
            for class_id in image.classes:
                self.queues.setdefault(class_id, []).append(index)
        for class_id in sorted(self.queues):
            rng.shuffle(self.queues[class_id])
        self.heads = dict.fromkeys(self.queues, 0)  # next position to look at in each queue

    def guarantee(self, min_per_class: int) -> None:
        """Rarest class first, so its few candidates are not spent before its turn (they may hold others too)."""
        for class_id in sorted(self.queues, key=lambda c: (len(self.queues[c]), c)):
            if len(self.queues[class_id]) < min_per_class:
                continue
            while self.counts[class_id] < min_per_class and self._take_for(class_id):
                pass

    def fill(self, budget: int) -> None:
        """Give the next image to the class with the fewest so far; a heap keyed (count, random tie-break)."""
        heap = [(self.counts[c], self.rng.random(), c) for c in sorted(self.queues)]
        heapq.heapify(heap)
        while len(self.chosen) < budget and heap:
            count, _, class_id = heapq.heappop(heap)
            if count != self.counts[class_id]:
                continue  # stale: the class gained images through another class's pick and was pushed again
            image = self._take_for(class_id)
            if image is None:
                continue  # no candidates left for this class
            for changed in sorted(image.classes):
                heapq.heappush(heap, (self.counts[changed], self.rng.random(), changed))

    def _take_for(self, class_id: int) -> SourceImage | None:
        queue = self.queues[class_id]
        while self.heads[class_id] < len(queue) and queue[self.heads[class_id]] in self.taken:
            self.heads[class_id] += 1
        if self.heads[class_id] == len(queue):
            return None
        index = queue[self.heads[class_id]]
        image = self.labelled[index]
        self.taken.add(index)
        self.chosen.append(image)
        self.counts.update(image.classes)
        return image


def _per_class(chosen: list[SourceImage]) -> dict[int, int]:
    counts: Counter[int] = Counter()
    for image in chosen:
        counts.update(image.classes)
    return dict(sorted(counts.items()))
