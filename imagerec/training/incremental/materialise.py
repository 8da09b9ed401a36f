"""Writing a task's training dataset into its run folder: linked images, label files in merged class ids.

Images are linked, not copied, where the filesystem allows it: replaying thousands of old images must not double
the disk they take. A hard link is preferred to a symlink because it survives the source dataset being deleted
while the task runs; across filesystems only a symlink (or, where even that fails, a copy) is possible.
Every file name is made unique per source dataset and item (``unique_name``), since two datasets can both hold
an ``images/train/0001.jpg``.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from imagerec.files.links import link_file
from imagerec.training.incremental.replay import class_id_of

LINK_KINDS = ("hardlink", "symlink", "copy")
MAX_STEM_CHARS = 100  # keeps names well under the usual 255-byte file name limit
MAX_FOLDER_NAME_CHARS = 100
_UNSAFE = re.compile(r"[^\w.\-]+")  # \w keeps letters and digits of any script


@dataclass(frozen=True)
class LabelledItem:
    image: Path
    lines: list[str]  # label lines already in merged ids; empty for a background image
    name: str  # file name to use in the materialised split


def remap_label_lines(text: str, class_map: list[int]) -> list[str]:
    """Each non-empty line of a label file with its leading class id replaced by ``class_map[id]``."""
    remapped = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        class_id = class_id_of(line)
        if not 0 <= class_id < len(class_map):
            raise ValueError(f"line {number}: class id {class_id} is outside the {len(class_map)} known classes")
        remapped.append(" ".join([str(class_map[class_id]), *line.split()[1:]]))
    return remapped


def unique_name(item_index: int, source_id: int, image: Path) -> str:
    """``d<source>_<index>_<stem><suffix>``: unique as long as ``item_index`` is unique within a source."""
    return f"d{source_id}_{item_index:06d}_{image.stem[:MAX_STEM_CHARS]}{image.suffix}"


def write_labelled_split(root: Path, split: str, items: list[LabelledItem]) -> dict[str, int]:
    """``images/<split>/<name>`` linked and ``labels/<split>/<stem>.txt`` written for items with lines."""
    _refuse_duplicate_names([item.name for item in items])
    kinds: Counter[str] = Counter(dict.fromkeys(LINK_KINDS, 0))
    labels_dir = root / "labels" / split
    labels_dir.mkdir(parents=True, exist_ok=True)
    for item in items:
        kinds[link_file(item.image, root / "images" / split / item.name)] += 1
        if item.lines:
            (labels_dir / f"{Path(item.name).stem}.txt").write_text("\n".join(item.lines) + "\n")
    return dict(kinds)


def classify_folder_names(names: list[str]) -> list[str]:
    """Class folder names whose sorted order is the merged order: Ultralytics numbers classify classes by sorted
    folder name, so "cat" and "Ant" would otherwise swap ids. An equal-width index prefix fixes the order; the
    rest of the name only helps a person reading the run folder, so anything unsafe in a path becomes "_"."""
    width = max(3, len(str(len(names) - 1)))
    return [f"{index:0{width}d}-{_safe(name)}" for index, name in enumerate(names)]


def write_classify_split(root: Path, split: str, items: list[tuple[Path, int, str]],
                         names: list[str]) -> dict[str, int]:
    """Each (image, merged id, file name) linked to ``<split>/<class folder>/<file name>``.

    Every class gets its folder, even an empty one: Ultralytics counts the classes from the train folders.
    """
    _refuse_duplicate_names([file_name for _, _, file_name in items])
    folders = [root / split / folder for folder in classify_folder_names(names)]
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    kinds: Counter[str] = Counter(dict.fromkeys(LINK_KINDS, 0))
    for image, class_id, file_name in items:
        if not 0 <= class_id < len(names):
            raise ValueError(f"{image}: class id {class_id} is outside the {len(names)} merged classes")
        kinds[link_file(image, folders[class_id] / file_name)] += 1
    return dict(kinds)


def _safe(name: str) -> str:
    return _UNSAFE.sub("_", name)[:MAX_FOLDER_NAME_CHARS]


def _refuse_duplicate_names(names: list[str]) -> None:
    repeated = [name for name, count in Counter(names).items() if count > 1]
    if repeated:
        raise ValueError(f"file name {repeated[0]!r} is used by more than one item")
