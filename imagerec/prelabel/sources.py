"""The images a pre-labelling job goes through, with the human labels they already have.

A registered dataset keeps its splits and its labels. A server folder is taken as images only (anything
nested is found); every tenth image (by a hash of its path, at least one) goes to the val split so that the
dataset it produces can be trained on at once.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from imagerec.datasets.layout import SPLITS, is_image_name
from imagerec.files.service import containing_root
from imagerec.vision import VisionTask

VAL_EVERY = 10


@dataclass(frozen=True)
class SourceItem:
    split: str
    rel: PurePosixPath  # below the split folder (and below the class folder for classify)
    image: Path  # the real file to read
    human_label: Path | None = None  # detect/segment/pose: the label file it already has
    human_class: str | None = None  # classify: the class folder it already sits in

    @property
    def labelled(self) -> bool:
        return self.human_label is not None or self.human_class is not None


def _images_below(folder: Path) -> Iterator[Path]:
    if folder.is_dir():
        for path in sorted(folder.rglob("*")):
            hidden = any(part.startswith(".") for part in path.relative_to(folder).parts)
            if not hidden and path.is_file() and is_image_name(path.name):
                yield path


def from_dataset(files_dir: Path, *, task: str) -> list[SourceItem]:
    items = []
    for split in SPLITS:
        if task == VisionTask.classify:
            for class_dir in sorted(p for p in (files_dir / split).iterdir() if p.is_dir()):
                items += [SourceItem(split, PurePosixPath(image.relative_to(class_dir).as_posix()),
                                     image.resolve(), human_class=class_dir.name)
                          for image in _images_below(class_dir)]
            continue
        image_root = files_dir / "images" / split
        for image in _images_below(image_root):
            rel = PurePosixPath(image.relative_to(image_root).as_posix())
            label = files_dir / "labels" / split / rel.with_suffix(".txt")
            items.append(SourceItem(split, rel, image.resolve(), human_label=label if label.is_file() else None))
    return items


def from_folder(folder: Path, *, roots: list[Path]) -> tuple[list[SourceItem], list[str]]:
    """Images under ``folder``; those whose real file lies outside the allowed roots are skipped (warned)."""
    items, skipped = [], []
    for image in _images_below(folder):
        rel = PurePosixPath(image.relative_to(folder).as_posix())
        real = image.resolve()
        if containing_root(roots, real) is None:
            skipped.append(f"{rel}: leads outside the allowed roots; skipped")
            continue
        split = "val" if zlib.crc32(str(rel).encode()) % VAL_EVERY == 0 else "train"
        items.append(SourceItem(split, rel, real))
    if items and not any(item.split == "val" for item in items):
        last = items[-1]
        items[-1] = SourceItem("val", last.rel, last.image)
    return items, skipped
