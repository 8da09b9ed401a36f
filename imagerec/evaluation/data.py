"""The images an evaluation runs on, in the model's class space, written by the server (never a user's YAML).

Ultralytics' validator compares the model's class ids with the label files' ids, so the labels must speak the
model's language. When the dataset's class list is the model's, the server's YAML points at the dataset's own
folders. Otherwise the evaluation gets its own copy of the split: images linked, label lines rewritten to the
model's ids by class name, lines of classes the model does not know dropped (they are reported, not scored).
Splits: ``val``, ``train``, ``test`` (when the dataset has one) or ``all`` of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from imagerec.datasets.layout import IMAGE_SUFFIXES
from imagerec.files.links import link_file
from imagerec.vision import VisionTask

SPLIT_FOLDERS = ("train", "val", "test")


@dataclass(frozen=True)
class ClassMatch:
    common: list[str]
    model_only: list[str]
    dataset_only: list[str]

    def as_dict(self) -> dict[str, list[str]]:
        return {"common": self.common, "model_only": self.model_only, "dataset_only": self.dataset_only}


def match_classes(model_names: list[str], dataset_names: list[str]) -> ClassMatch:
    dataset_set, model_set = set(dataset_names), set(model_names)
    return ClassMatch(common=[n for n in model_names if n in dataset_set],
                      model_only=[n for n in model_names if n not in dataset_set],
                      dataset_only=[n for n in dataset_names if n not in model_set])


def available_splits(files_dir: Path, task: str) -> list[str]:
    base = files_dir if task == VisionTask.classify else files_dir / "images"
    return [split for split in SPLIT_FOLDERS if (base / split).is_dir()]


def splits_for(requested: str, files_dir: Path, task: str) -> list[str]:
    present = available_splits(files_dir, task)
    return present if requested == "all" else [requested]


def _remap_labels(source: Path, target: Path, id_map: dict[int, int]) -> None:
    lines = []
    for line in source.read_text().splitlines():
        head, _, rest = line.strip().partition(" ")
        if head and int(head) in id_map:
            lines.append(f"{id_map[int(head)]} {rest}")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("\n".join(lines) + ("\n" if lines else ""))


def _materialise(files_dir: Path, target: Path, splits: list[str], id_map: dict[int, int]) -> None:
    for split in splits:
        for image in sorted((files_dir / "images" / split).rglob("*")):
            if image.suffix.lower().lstrip(".") not in IMAGE_SUFFIXES or not image.is_file():
                continue
            relative = image.relative_to(files_dir / "images" / split)
            link_file(image, target / "images" / split / relative)
            label = (files_dir / "labels" / split / relative).with_suffix(".txt")
            if label.is_file():
                _remap_labels(label, (target / "labels" / split / relative).with_suffix(".txt"), id_map)


def _classify_union(files_dir: Path, target: Path, splits: list[str]) -> None:
    """One ``val`` folder holding every split's images (Ultralytics reads one split folder for classify)."""
    for split in splits:
        for image in sorted((files_dir / split).glob("*/*")):
            if image.suffix.lower().lstrip(".") in IMAGE_SUFFIXES and image.is_file():
                link_file(image, target / "val" / image.parent.name / f"{split}-{image.name}")


def write_eval_data(*, task: str, files_dir: Path, dataset_names: list[str], model_names: list[str],
                    kpt_shape: list[int] | None, flip_idx: list[int] | None, split: str,
                    work_dir: Path) -> tuple[str, str]:
    """``(data, split)`` for ``val``: the server's YAML for detect/segment/pose, a folder for classify (whose
    class folders Ultralytics itself aligns with the model's names, dropping those the model lacks)."""
    splits = splits_for(split, files_dir, task)
    if task == VisionTask.classify:
        if split != "all":
            return str(files_dir), split
        _classify_union(files_dir, work_dir / "data", splits)
        return str(work_dir / "data"), "val"
    root = files_dir
    if list(dataset_names) != list(model_names):
        by_name = {name: index for index, name in enumerate(model_names)}
        id_map = {index: by_name[name] for index, name in enumerate(dataset_names) if name in by_name}
        root = work_dir / "data"
        _materialise(files_dir, root, splits, id_map)
    folders = [f"images/{s}" for s in splits]
    content: dict = {"path": str(root), "train": folders, "val": folders, "test": folders,
                     "names": dict(enumerate(model_names))}
    if task == VisionTask.pose:
        content["kpt_shape"] = list(kpt_shape)
        if flip_idx is not None:
            content["flip_idx"] = list(flip_idx)
    target = work_dir / "data.yaml"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(yaml.safe_dump(content, sort_keys=False))
    return str(target), "val"


def count_images(files_dir: Path, task: str, split: str) -> int:
    splits = splits_for(split, files_dir, task)
    base = files_dir if task == VisionTask.classify else files_dir / "images"
    return sum(1 for s in splits for path in (base / s).rglob("*")
               if path.suffix.lower().lstrip(".") in IMAGE_SUFFIXES and path.is_file())
