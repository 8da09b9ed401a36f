"""Writes imported ``Samples`` into a dataset's ``files/`` folder in the Ultralytics layout.

Images of an upload are moved out of the unpacked zip (an image two splits share is linked the second time);
images of a server folder become symlinks to their real paths, so the data stays where it is. YOLO label files
are copied verbatim (the validator then names their lines), other formats' objects are written as label lines.
Samples without a split are written to ``_unsplit`` first; once every sample is written, ``splitting`` decides
where they go, together with the train images when the source had no validation split, or every image when a
re-split was asked for. VOC's ``difficult`` flags are kept in ``difficult.json`` beside ``files/``.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from imagerec.datasets.formats.base import Imported, Problems, Sample, label_lines
from imagerec.datasets.layout import files_under
from imagerec.datasets.splitting import Entry, SplitRequest, assign
from imagerec.errors import Unprocessable
from imagerec.files.links import link_file

UNSPLIT = "_unsplit"
DIFFICULT_FILE = "difficult.json"


@dataclass
class _Placed:
    split: str
    name: str
    classes: tuple[int, ...]


@dataclass
class Writer:
    files_dir: Path
    task: str
    link_images: bool
    problems: Problems
    class_names: list[str]
    placed: dict[tuple[str, str], _Placed] = field(default_factory=dict)
    written_from: dict[Path, Path] = field(default_factory=dict)  # source image -> where it was first put
    difficult: dict[str, list[int]] = field(default_factory=dict)  # label path -> difficult line numbers
    missing: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    existing: ExistingImages | None = None  # a new version: the images it starts from
    class_map: list[int] | None = None  # the source's class ids in the dataset's class list, when they differ

    def write(self, sample: Sample) -> None:
        if self.class_map is not None:
            _remap(sample, self.class_map)
        if self.existing is not None:
            self.existing.resolve(sample)
        if sample.image is None:
            self.missing.append(sample.source or sample.name)
            return
        split = sample.split or UNSPLIT
        if (split, sample.name) in self.placed:
            self.duplicates.append(f"{split}/{sample.name}")
            return
        self._put_image(sample.image, self._image_path(split, sample))
        classes = self._put_labels(split, sample)
        self.placed[(split, sample.name)] = _Placed(split, sample.name, classes)

    def _image_path(self, split: str, sample: Sample) -> Path:
        if self.task == "classify":
            return self.files_dir / split / self._class_folder(sample) / sample.name
        return self.files_dir / "images" / split / sample.name

    def _class_folder(self, sample: Sample) -> str:
        return self.class_names[sample.class_id]

    def _put_image(self, source: Path, target: Path) -> None:
        if source == target:  # a new version relabels an image it already holds
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_symlink() or target.exists():  # a version's image replaced by the upload's
            target.unlink()
        first = self.written_from.get(source)
        if first is not None:
            link_file(first, target)
        elif self.link_images:
            os.symlink(source, target)
        else:
            os.replace(source, target)
        self.written_from.setdefault(source, target)

    def _put_labels(self, split: str, sample: Sample) -> tuple[int, ...]:
        if self.task == "classify":
            return (sample.class_id,)
        label = self._label_path(split, sample.name)
        if label.exists():  # a version's label is a hard link to its parent's: never write through it
            label.unlink()
        if sample.label_file is not None:
            label.parent.mkdir(parents=True, exist_ok=True)
            if self.class_map is None:
                shutil.copyfile(sample.label_file, label)
            else:
                label.write_text(_remapped_text(sample.label_file, self.class_map))
            return _class_ids_of(label)
        lines = label_lines(sample, task=self.task)
        if lines:
            label.parent.mkdir(parents=True, exist_ok=True)
            label.write_text("\n".join(lines) + "\n")
        flagged = [index for index, annotation in enumerate(sample.annotations) if annotation.difficult]
        if flagged:
            self.difficult[f"{split}/{sample.name}"] = flagged
        return tuple(annotation.class_id for annotation in sample.annotations)

    def _label_path(self, split: str, name: str) -> Path:
        return self.files_dir / "labels" / split / f"{name.rsplit('.', 1)[0]}.txt"


@dataclass
class ExistingImages:
    """The images a new version starts from, so a sample that names one (by split and name, or by a base name
    only one of them has) relabels it: its split, its name, and its file when the upload lacks the image."""

    files_dir: Path
    task: str
    by_key: dict[str, tuple[str, str]] = field(default_factory=dict)  # "split/name" -> (split, name)
    by_base: dict[str, list[tuple[str, str]]] = field(default_factory=dict)

    @classmethod
    def scan(cls, files_dir: Path, *, task: str) -> ExistingImages:
        existing = cls(files_dir, task)
        for split, name in image_names(files_dir, task=task):
            existing.by_key[f"{split}/{name}"] = (split, name)
            existing.by_base.setdefault(name.rpartition("/")[2], []).append((split, name))
        return existing

    def resolve(self, sample: Sample) -> None:
        found = self.by_key.get(f"{sample.split}/{sample.name}")
        if found is None and sample.split is None:
            matches = self.by_base.get(sample.name.rpartition("/")[2], [])
            found = matches[0] if len(matches) == 1 else None
        if found is None:
            return
        sample.split, sample.name = found
        held = self.path(*found)
        if sample.image is None:
            sample.image = held  # moved to its (maybe new) class folder, or left where it is
        elif self.task == "classify":
            held.unlink()  # the upload's copy goes to its class folder; the old class must not keep one

    def path(self, split: str, name: str) -> Path:
        if self.task == "classify":
            return next((self.files_dir / split).glob(f"*/{name}"))
        return self.files_dir / "images" / split / name


def _remap(sample: Sample, class_map: list[int]) -> None:
    if sample.class_id is not None:
        sample.class_id = class_map[sample.class_id]
    for annotation in sample.annotations:
        annotation.class_id = class_map[annotation.class_id]


def _remapped_text(label_file: Path, class_map: list[int]) -> str:
    """A YOLO label in the dataset's class ids; a line that is not a valid class id is kept for the validator."""
    lines = []
    for line in label_file.read_text(encoding="utf-8-sig", errors="replace").splitlines():
        head, _, rest = line.strip().partition(" ")
        if head.isdigit() and int(head) < len(class_map):
            line = f"{class_map[int(head)]} {rest}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def remove_images(files_dir: Path, *, names: list[str], task: str) -> list[str]:
    """Remove the named images (``split/name``, ``images/split/name``, or a base name only one image has) and
    their labels; returns their ``split/name``. 422 naming every name that matches no image (or several)."""
    existing = ExistingImages.scan(files_dir, task=task)
    found, unknown = [], []
    for raw in names:
        key = raw.strip().removeprefix("images/")
        match = existing.by_key.get(key)
        if match is None:
            candidates = existing.by_base.get(key.rpartition("/")[2], []) if "/" not in key else []
            match = candidates[0] if len(candidates) == 1 else None
        if match is None:
            unknown.append(raw)
        else:
            found.append(match)
    if unknown:
        raise Unprocessable(f"{len(unknown)} images to remove are not in the dataset (or name several): "
                            f"{', '.join(unknown[:5])}", details=[{"file": name, "line": None,
                                                                   "message": "no such image"} for name in unknown])
    for split, name in dict.fromkeys(found):
        existing.path(split, name).unlink()
        label = files_dir / "labels" / split / f"{name.rsplit('.', 1)[0]}.txt"
        if label.exists():
            label.unlink()
    _drop_difficult(files_dir.parent / DIFFICULT_FILE, {f"{split}/{name}" for split, name in found})
    return sorted({f"{split}/{name}" for split, name in found})


def _drop_difficult(path: Path, keys: set[str]) -> None:
    if path.is_file():
        flags = {key: value for key, value in json.loads(path.read_text()).items() if key not in keys}
        path.unlink()  # copied, not linked, but a fresh file all the same
        path.write_text(json.dumps(flags, sort_keys=True))


def image_names(files_dir: Path, *, task: str) -> list[tuple[str, str]]:
    """(split, name) of every image of a staged or registered dataset."""
    found = []
    for split_dir in sorted(files_dir.iterdir() if task == "classify" else (files_dir / "images").iterdir()):
        for rel in sorted(files_under(split_dir)):
            found.append((split_dir.name, rel.partition("/")[2] if task == "classify" else rel))
    return found


def write_samples(imported: Imported, files_dir: Path, *, task: str, link_images: bool,
                  split_request: SplitRequest, problems: Problems, class_names: list[str],
                  existing: ExistingImages | None = None, class_map: list[int] | None = None,
                  on_sample: Callable[[int], None] | None = None) -> None:
    """Write every sample, split what needs splitting, and report missing images and clashing names.

    ``existing``: a new version's images; samples that name one relabel it, and only new unsplit images are
    split (the version's own splits stay)."""
    writer = Writer(files_dir=files_dir, task=task, link_images=link_images, problems=problems,
                    class_names=class_names, existing=existing, class_map=class_map)
    for count, sample in enumerate(imported.samples, start=1):
        writer.write(sample)
        if on_sample is not None:  # a dataset_import task: progress, and its cancel
            on_sample(count)
    _report(writer, problems)
    if writer.placed:
        _split(writer, split_request if existing is None else replace(split_request, resplit=False),
               fill_val=existing is None)
    _remove_empty_folders(files_dir)
    _write_difficult(files_dir.parent / DIFFICULT_FILE, writer)


def _write_difficult(path: Path, writer: Writer) -> None:
    """Merge this run's flags into the version's; a relabelled image's old flags go with its old labels."""
    flags = json.loads(path.read_text()) if path.is_file() else {}
    for split, name in writer.placed:
        flags.pop(f"{split}/{name}", None)
    flags.update(writer.difficult)
    if path.exists():
        path.unlink()
    if flags:
        path.write_text(json.dumps(flags, sort_keys=True))


def _report(writer: Writer, problems: Problems) -> None:
    if writer.missing:
        problems.warn(f"{len(writer.missing)} annotated images are not in the source and were skipped "
                      f"(e.g. {', '.join(writer.missing[:3])})")
    if writer.duplicates:
        problems.warn(f"{len(writer.duplicates)} images share a split and name with an earlier one and were "
                      f"skipped (e.g. {', '.join(writer.duplicates[:3])})")


def _split(writer: Writer, request: SplitRequest, *, fill_val: bool) -> None:
    splits = {placed.split for placed in writer.placed.values()}
    if request.resplit:
        movable = set(splits)
    else:
        movable = {UNSPLIT} | ({"train"} if fill_val and "val" not in splits else set())
    entries = {f"{placed.split}/{placed.name}": placed for placed in writer.placed.values() if placed.split in movable}
    if not entries:
        return
    if len(entries) < 2 and ("val" in splits or not fill_val):  # one unsplit image beside a val split: it trains
        targets = dict.fromkeys(entries, "train")
    else:
        targets = assign((Entry(key, placed.classes) for key, placed in entries.items()), request)
    for key, placed in entries.items():
        if targets[key] != placed.split:
            _move(writer, placed, targets[key])


def _move(writer: Writer, placed: _Placed, target_split: str) -> None:
    files = writer.files_dir
    name = placed.name
    taken = (files / "images" / target_split / name if writer.task != "classify"
             else files / target_split / writer.class_names[placed.classes[0]] / name)
    if (target_split, name) in writer.placed or taken.exists():  # train/a.jpg and _unsplit/a.jpg both for val
        name = f"{placed.split.strip('_')}-{name}"
    if writer.task == "classify":
        class_folder = writer.class_names[placed.classes[0]]
        _rename(files / placed.split / class_folder / placed.name, files / target_split / class_folder / name)
    else:
        _rename(files / "images" / placed.split / placed.name, files / "images" / target_split / name)
        _rename(writer._label_path(placed.split, placed.name), writer._label_path(target_split, name))
    old_key = f"{placed.split}/{placed.name}"
    if old_key in writer.difficult:
        writer.difficult[f"{target_split}/{name}"] = writer.difficult.pop(old_key)
    del writer.placed[(placed.split, placed.name)]
    writer.placed[(target_split, name)] = _Placed(target_split, name, placed.classes)


def _rename(source: Path, target: Path) -> None:
    if source.exists() or source.is_symlink():
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, target)


def _remove_empty_folders(files_dir: Path) -> None:
    """The ``_unsplit`` folders, emptied by the split."""
    for folder in sorted(files_dir.rglob(UNSPLIT), key=lambda path: -len(path.parts)):
        for path in sorted(folder.rglob("*"), key=lambda path: -len(path.parts)):
            if path.is_dir() and not any(path.iterdir()):
                path.rmdir()
        if not any(folder.iterdir()):
            folder.rmdir()


def _class_ids_of(label: Path) -> tuple[int, ...]:
    """Class ids of a copied YOLO label, read leniently: the validator reports bad lines, stratifying only counts."""
    ids = []
    for line in label.read_text(encoding="utf-8-sig", errors="replace").splitlines():
        head = line.split(maxsplit=1)[0] if line.strip() else ""
        try:
            ids.append(int(float(head)))
        except ValueError:
            continue
    return tuple(ids)
