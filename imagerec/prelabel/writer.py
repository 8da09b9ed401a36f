"""Writes the dataset a pre-labelling job produces: images linked (not copied), labels written or kept."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

from imagerec.annotation.formats.yolo_text import yolo_label_text
from imagerec.annotation.schemas import ImageAnnotations
from imagerec.files.links import link_file
from imagerec.prelabel.sources import SourceItem
from imagerec.vision import VisionTask


class DatasetWriter:
    def __init__(self, *, files_dir: Path, task: str, kpt_dims: int, num_keypoints: int | None) -> None:
        self.files_dir = files_dir
        self.task = task
        self.kpt_dims = kpt_dims
        self.num_keypoints = num_keypoints
        self.images: Counter[str] = Counter()
        self.instances: Counter[str] = Counter()
        self.backgrounds: Counter[str] = Counter()

    def _image_target(self, item: SourceItem, class_name: str | None) -> Path:
        if self.task == VisionTask.classify:
            return self.files_dir / item.split / class_name / item.rel
        return self.files_dir / "images" / item.split / item.rel

    def _label_target(self, item: SourceItem) -> Path:
        return self.files_dir / "labels" / item.split / item.rel.with_suffix(".txt")

    def _count(self, split: str, instances: int) -> None:
        self.images[split] += 1
        self.instances[split] += instances
        self.backgrounds[split] += instances == 0

    def keep_human(self, item: SourceItem) -> None:
        link_file(item.image, self._image_target(item, item.human_class))
        if self.task == VisionTask.classify:
            self._count(item.split, 1)
            return
        label = self._label_target(item)
        label.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(item.human_label, label)
        self._count(item.split, sum(1 for line in label.read_text().splitlines() if line.strip()))

    def write_predicted(self, item: SourceItem, annotations: ImageAnnotations) -> None:
        if self.task == VisionTask.classify:
            top = annotations.labels[0].class_name
            link_file(item.image, self._image_target(item, top))
            self._count(item.split, 1)
            return
        link_file(item.image, self._image_target(item, None))
        label = self._label_target(item)
        label.parent.mkdir(parents=True, exist_ok=True)
        text = yolo_label_text(annotations, task=self.task, kpt_dims=self.kpt_dims,
                               num_keypoints=self.num_keypoints)
        label.write_text(text)
        self._count(item.split, sum(1 for line in text.splitlines() if line.strip()))

    def summary(self, warnings: list[str]) -> dict:
        splits = {split: {"images": self.images[split], "instances": self.instances[split],
                          "backgrounds": self.backgrounds[split]} for split in ("train", "val")}
        if self.task == VisionTask.classify:
            for counts in splits.values():
                counts["backgrounds"] = 0
        return {"splits": splits, "warnings": warnings}
