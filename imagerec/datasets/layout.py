"""Which files of a source folder make up a dataset, and how they are staged into ``files/``.

A dataset's ``files/`` folder holds exactly the Ultralytics layout and nothing else::

    detect / segment / pose   images/{train,val}/…  labels/{train,val}/…
    classify                  train/<class>/…  val/<class>/…

An uploaded zip's files are moved there. A folder imported from the server is mirrored instead: image files
become symlinks to their real paths (the data stays where it is) and label files are copied (the copy is the
snapshot that was validated). Symlinks are followed only while every component of every path resolves inside the
allowed roots (an upload: none are followed); a link that would lead outside is refused by its path in the dataset,
and nothing behind it is read. Hidden files are skipped, as Ultralytics' own globbing skips them.
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from imagerec.errors import Unprocessable
from imagerec.files.service import containing_root

# Ultralytics' IMG_FORMATS: every file with one of these suffixes in a split folder is an image to it.
IMAGE_SUFFIXES = frozenset(
    {"avif", "bmp", "dng", "heic", "heif", "jp2", "jpeg", "jpg", "mpo", "png", "tif", "tiff", "webp"}
)
LABEL_SUFFIX = "txt"
SPLITS = ("train", "val")
DATA_YAML_NAMES = ("data.yaml", "data.yml", "dataset.yaml", "dataset.yml")
DATA_YAML_MAX_BYTES = 1024 * 1024


@dataclass(frozen=True)
class SourceFile:
    rel: PurePosixPath  # where it goes under files/, e.g. images/train/a.jpg
    real: Path  # the real (symlink-free) path it is read from
    is_image: bool


@dataclass
class Collected:
    files: list[SourceFile] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)


def is_image_name(name: str) -> bool:
    return name.rpartition(".")[2].lower() in IMAGE_SUFFIXES


def split_folders(task: str) -> list[str]:
    if task == "classify":
        return list(SPLITS)
    return [f"{kind}/{split}" for kind in ("images", "labels") for split in SPLITS]


def collect(source_root: Path, *, task: str, roots: list[Path] | None) -> Collected:
    """The dataset files under ``source_root``, with problems (missing folders, refused symlinks) as errors.

    ``roots``: every path must resolve inside them; None (an upload) refuses every symlink and confines the
    walk to ``source_root``.
    """
    collected = Collected()
    walker = _Walker.for_source(source_root, roots=roots, errors=collected.errors)
    for folder in split_folders(task):
        start = walker.resolve(PurePosixPath(folder))
        if start is None:
            if not walker.refused_above(PurePosixPath(folder)):
                collected.errors.append({"file": folder, "line": None, "message": "required folder is missing"})
            continue
        ignored: Counter[str] = Counter()
        for rel, real in walker.walk(start, PurePosixPath(folder)):
            keep, is_image = _keep(task, folder, rel)
            if keep:
                collected.files.append(SourceFile(rel, real, is_image))
            elif not rel.name.endswith(".cache"):  # Ultralytics' own label caches
                ignored[rel.name] += 1
        if ignored:
            example = next(iter(ignored))
            collected.warnings.append(
                f"{folder}: {sum(ignored.values())} files that are not part of the layout were ignored "
                f"(e.g. {example})"
            )
    return collected


def _keep(task: str, folder: str, rel: PurePosixPath) -> tuple[bool, bool]:
    if task == "classify":  # images inside a class folder: train/<class>/…
        return len(rel.parts) >= 3 and is_image_name(rel.name), True
    if folder.startswith("images/"):
        return is_image_name(rel.name), True
    return rel.suffix == f".{LABEL_SUFFIX}", False


@dataclass
class _Walker:
    """Walks a source folder one component at a time, from real (symlink-free) paths already checked.

    Each step joins one plain name to a real folder known to lie inside the confines; only a step whose name
    is itself a symlink can leave them, so that is where the check is made, before anything behind the link
    is stat'ed or read. A refused link is reported once, by its path in the dataset.
    """

    root: Path  # the real path of the source folder
    confines: list[Path]
    follow_links: bool
    errors: list[dict]
    refused: set[PurePosixPath] = field(default_factory=set)

    @classmethod
    def for_source(cls, source_root: Path, *, roots: list[Path] | None, errors: list[dict]) -> _Walker:
        root = Path(os.path.realpath(source_root))
        return cls(root=root, confines=roots if roots is not None else [root], follow_links=roots is not None,
                   errors=errors)

    def resolve(self, rel: PurePosixPath) -> Path | None:
        """The real path of ``rel``; None when it is missing or a component of it was refused."""
        real = self.root
        for depth, name in enumerate(rel.parts, start=1):
            step = self._step(real, name, PurePosixPath(*rel.parts[:depth]))
            if step is None:
                return None
            real = step
        return real

    def refused_above(self, rel: PurePosixPath) -> bool:
        return any(PurePosixPath(*rel.parts[:depth]) in self.refused for depth in range(1, len(rel.parts) + 1))

    def walk(
        self, real: Path, rel: PurePosixPath, seen: frozenset[Path] = frozenset()
    ) -> Iterator[tuple[PurePosixPath, Path]]:
        """Files at or below ``real`` (the checked real path of ``rel``) as (relative path, real path)."""
        if real in seen:  # a symlink loop
            return
        if real.is_file():
            yield rel, real
            return
        if not real.is_dir():
            return
        with os.scandir(real) as entries:
            names = sorted(entry.name for entry in entries if not entry.name.startswith("."))
        for name in names:
            child = self._step(real, name, rel / name)
            if child is not None:
                yield from self.walk(child, rel / name, seen | {real})

    def _step(self, parent: Path, name: str, rel: PurePosixPath) -> Path | None:
        path = parent / name
        if not path.is_symlink():
            return path if path.exists() else None
        if not self.follow_links:  # an upload's zip cannot hold links (archive refuses them): never follow one
            return self._refuse(rel, "symbolic links are not accepted in an upload")
        real = Path(os.path.realpath(path))
        if containing_root(self.confines, real) is None:
            return self._refuse(rel, "symlink points outside the allowed roots")
        if not real.exists():
            return self._refuse(rel, "broken symlink")
        return real

    def _refuse(self, rel: PurePosixPath, message: str) -> None:
        if rel not in self.refused:  # train and val below one refused link share one report
            self.refused.add(rel)
            self.errors.append({"file": str(rel), "line": None, "message": message})


def stage(collected: Collected, files_dir: Path, *, link_images: bool) -> None:
    """Put the collected files under ``files_dir``: moved, or (``link_images``) images linked and labels copied."""
    for source in collected.files:
        target = files_dir.joinpath(*source.rel.parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        if not link_images:
            os.replace(source.real, target)
        elif source.is_image:
            os.symlink(source.real, target)
        else:
            shutil.copyfile(source.real, target)


def find_data_yaml(source_root: Path, *, roots: list[Path] | None) -> tuple[str, bytes] | None:
    """The dataset's YAML (name, content) if the folder has one; it is read, never given to Ultralytics."""
    for name in DATA_YAML_NAMES:
        path = source_root / name
        if not path.is_symlink() and not path.exists():  # a link is not stat'ed before the walker checks it
            continue
        errors: list[dict] = []
        real = _Walker.for_source(source_root, roots=roots, errors=errors).resolve(PurePosixPath(name))
        if errors:
            raise Unprocessable(f"{name}: {errors[0]['message']}")
        if real is None or not real.is_file():
            raise Unprocessable(f"{name} is not a file")
        if real.stat().st_size > DATA_YAML_MAX_BYTES:
            raise Unprocessable(f"{name} is larger than {DATA_YAML_MAX_BYTES} bytes")
        return name, real.read_bytes()
    return None
