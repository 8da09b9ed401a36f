"""Deterministic, class-stratified splits for data that has no validation split (or on request).

Each image joins the stratum of its rarest class (by instances in the whole set; backgrounds form their own
stratum), so a rare class is split on its own instead of drowning in the common ones. Within a stratum the images
are sorted by name, shuffled with a generator seeded by ``seed`` and the stratum, and cut by the ratios; a stratum
of at least three images gives every requested split at least one, so a rare class reaches val and test. The same
names, labels and seed always give the same split.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from imagerec.errors import Unprocessable

BACKGROUND = -1


@dataclass(frozen=True)
class SplitRequest:
    val_ratio: float = 0.2
    test_ratio: float = 0.0
    seed: int = 0
    resplit: bool = False  # split everything anew, ignoring the source's own splits


@dataclass(frozen=True)
class Entry:
    key: str  # unique per image
    classes: tuple[int, ...]  # the class id of each instance (classify: the one class)


def assign(entries: Iterable[Entry], request: SplitRequest) -> dict[str, str]:
    """key -> "train" | "val" | "test"."""
    entries = list(entries)
    if len(entries) < 2:
        raise Unprocessable(f"splitting needs at least 2 images, the data has {len(entries)}")
    frequency = Counter(class_id for entry in entries for class_id in entry.classes)
    strata: dict[int, list[str]] = {}
    for entry in entries:
        stratum = min(entry.classes, key=lambda class_id: (frequency[class_id], class_id), default=BACKGROUND)
        strata.setdefault(stratum, []).append(entry.key)
    result: dict[str, str] = {}
    for stratum, keys in sorted(strata.items()):
        keys.sort()
        random.Random(f"{request.seed}:{stratum}").shuffle(keys)
        result.update(_cut(keys, request))
    _ensure_val(result, request)
    return result


def _cut(keys: list[str], request: SplitRequest) -> dict[str, str]:
    count = len(keys)
    val = _share(count, request.val_ratio)
    test = _share(count, request.test_ratio)
    if val + test >= count:  # train keeps at least one image of the stratum
        test = max(0, count - 1 - val)
        val = min(val, count - 1)
    order = ["val"] * val + ["test"] * test
    return {key: order[index] if index < len(order) else "train" for index, key in enumerate(keys)}


def _share(count: int, ratio: float) -> int:
    if ratio <= 0:
        return 0
    return max(1 if count >= 3 else 0, round(count * ratio))


def _ensure_val(result: dict[str, str], request: SplitRequest) -> None:
    """Small strata may all stay in train; the split as a whole still needs a validation image."""
    if request.val_ratio > 0 and "val" not in result.values():
        trains = sorted(key for key, split in result.items() if split == "train")
        random.Random(request.seed).shuffle(trains)
        result[trains[0]] = "val"
