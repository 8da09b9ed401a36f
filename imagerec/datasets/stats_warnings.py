"""The warnings of a dataset's stats, from its counts and findings: duplicate images (leakage across splits and
copies within one), classes missing from val or unused, tiny boxes and near-duplicate labels. Each warning is
one aggregated message with a count and at most ``MAX_EXAMPLES`` examples.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from imagerec.datasets.stats import SplitStats

SPLITS = ("train", "val", "test")
MAX_EXAMPLES = 3
TINY_SIZE = 0.01
TINY_SIDE = 0.005
NEAR_DUPLICATE_IOU = 0.9


@dataclass
class Tally:
    """A count of findings with the first few examples, so a warning never lists every object."""

    count: int = 0
    entries: int = 0  # examples offered; one may stand for several counted objects (a group of copies)
    examples: list[str] = field(default_factory=list)

    def add(self, example: str, count: int = 1) -> None:
        self.count += count
        self.entries += 1
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append(example)

    def remove(self, label_rel: str, count: int = 1) -> None:
        """Take back one entry of the label file ``label_rel`` (a new version no longer holds it as it was)."""
        self.count -= count
        self.entries -= 1
        self.examples = [example for example in self.examples if not example.startswith(f"{label_rel} ")]

    def as_dict(self) -> dict:
        return {"count": self.count, "entries": self.entries, "examples": list(self.examples)}


@dataclass
class Findings:
    tiny: Tally = field(default_factory=Tally)
    tiny_per_class: dict[str, int] = field(default_factory=dict)
    near_duplicates: Tally = field(default_factory=Tally)

    def as_dict(self) -> dict:
        return {"tiny": self.tiny.as_dict(), "near_duplicates": self.near_duplicates.as_dict()}

    @classmethod
    def from_dict(cls, raw: dict, tiny_per_class: dict[str, int]) -> Findings:
        return cls(tiny=Tally(**raw["tiny"]), tiny_per_class=dict(tiny_per_class),
                   near_duplicates=Tally(**raw["near_duplicates"]))




def warnings_of(hashes: dict[str, str], splits: dict[str, SplitStats], class_names: list[str],
                findings: Findings) -> list[str]:
    return duplicate_warnings(hashes) + class_warnings(splits, class_names) + box_warnings(findings)


def duplicate_warnings(hashes: dict[str, str]) -> list[str]:
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
            tally = Tally()
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
        tally = Tally()
        for paths in duplicates:
            inside = [rel for rel in paths if _split_of(rel) == split]
            if len(inside) > 1:
                tally.add(" = ".join(inside[:2]) + (" = …" if len(inside) > 2 else ""), count=len(inside) - 1)
        if tally.count:
            warnings.append(f"{split}: {_count(tally.count, 'image')} {_agree(tally.count, 'duplicates', 'duplicate')}"
                            f" another image of the same split (same content): {_examples(tally)}")
    return warnings


def class_warnings(splits: dict[str, SplitStats], class_names: list[str]) -> list[str]:
    warnings = []
    if "train" in splits and "val" in splits:
        absent = [name for name, counts in splits["train"].classes.items()
                  if counts.instances and not getattr(splits["val"].classes.get(name), "instances", 0)]
        if absent:
            warnings.append(f"{_count(len(absent), 'class', 'classes')} {_agree(len(absent), 'has', 'have')} "
                            f"instances in train but none in val (not evaluated): {_names(absent)}")
    empty = [name for name in class_names if not any(split.classes[name].instances for split in splits.values())]
    if empty:
        warnings.append(f"{_count(len(empty), 'class', 'classes')} {_agree(len(empty), 'has', 'have')} "
                        f"no instances in any split: {_names(empty)}")
    return warnings


def box_warnings(findings: Findings) -> list[str]:
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


def _examples(tally: Tally) -> str:
    return ", ".join(tally.examples) + (", …" if tally.entries > len(tally.examples) else "")


def _names(names: list[str]) -> str:
    return ", ".join(names[:MAX_EXAMPLES]) + (", …" if len(names) > MAX_EXAMPLES else "")
