"""Shared by the format tests: images, an importer run on a folder, an exporter run into a folder."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

from PIL import Image

from imagerec.datasets.formats.base import ExportSource, Imported, ImportOptions, Problems, Sample, SourceTree
from imagerec.datasets.validation import Metadata

WIDTH, HEIGHT = 80, 60


def write_image(path: Path, *, size: tuple[int, int] = (WIDTH, HEIGHT)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (90, 120, 150)).save(path)
    return path


def read(importer, root: Path, *, task: str = "detect", **options) -> tuple[Imported, list[Sample], Problems]:
    problems = Problems()
    tree = SourceTree.walk(root, roots=None, problems=problems)
    imported = importer.read(tree, options=ImportOptions(task=task, **options), problems=problems)
    return imported, sorted(imported.samples, key=lambda sample: sample.name), problems


def detect(importer, root: Path, *, task: str = "detect") -> str | None:
    problems = Problems()
    return importer.detect(SourceTree.walk(root, roots=None, problems=problems), task=task)


class FolderSink:
    """The exporter's zip, as a folder."""

    def __init__(self, root: Path):
        self.root = root

    def add_file(self, arcname: str, path: Path) -> None:
        target = self.root / arcname
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)

    def add_bytes(self, arcname: str, data: bytes) -> None:
        target = self.root / arcname
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def export_to(module, folder: Path, *, task: str, metadata: Metadata, samples: list[Sample]) -> Path:
    def all_samples() -> Iterator[Sample]:
        return iter(samples)

    module.export(ExportSource(name="ds", task=task, metadata=metadata, samples=all_samples), FolderSink(folder))
    return folder
