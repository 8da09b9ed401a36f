"""Merging a model's class list with a new dataset's, so old class ids never move.

The merged list keeps the old names at their old ids (the base model's head already predicts them there) and
appends only names the model has never seen. Names match exactly: "Cat" and "cat" are two classes, because
guessing that they are one would silently merge a user's labels.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class ClassMerge:
    names: list[str]  # old names in order, then new names not already known, in the new dataset's order
    old_count: int  # merged ids below this are the base model's classes
    new_to_merged: list[int]  # index: class id in the new dataset; value: merged id
    added: list[str]  # names appended after the old ones
    extended: list[str]  # new-dataset names that already existed: their data extends an old class

    def map_for(self, names: list[str]) -> list[int]:
        """Class ids of any dataset with ``names`` → merged ids; ValueError names the first unknown class."""
        merged_id = {name: index for index, name in enumerate(self.names)}
        unknown = [name for name in names if name not in merged_id]
        if unknown:
            raise ValueError(f"class {unknown[0]!r} is not among the merged classes {self.names}")
        return [merged_id[name] for name in names]


def merge_classes(old: list[str], new: list[str]) -> ClassMerge:
    """Merge ``old`` (the base model's names) with ``new`` (the new dataset's); duplicates raise ValueError."""
    _refuse_duplicates(old, "the base model's classes")
    _refuse_duplicates(new, "the new dataset's classes")
    known = set(old)
    added = [name for name in new if name not in known]
    names = list(old) + added
    merged_id = {name: index for index, name in enumerate(names)}
    return ClassMerge(
        names=names,
        old_count=len(old),
        new_to_merged=[merged_id[name] for name in new],
        added=added,
        extended=[name for name in new if name in known],
    )


def _refuse_duplicates(names: Iterable[str], what: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"{what} name {name!r} more than once; class names must be unique")
        seen.add(name)
