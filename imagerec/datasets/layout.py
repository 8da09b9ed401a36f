"""Which files of a source folder make up a dataset, and how they are staged into ``files/``.

A dataset's ``files/`` folder holds exactly the Ultralytics layout and nothing else::

    detect / segment / pose   images/{train,val}/…  labels/{train,val}/…
    classify                  train/<class>/…  val/<class>/…

An uploaded zip's files are moved there. A folder imported from the server is mirrored instead: image files
become symlinks to their real paths (the data stays where it is) and label files are copied (the copy is the
snapshot that was validated). A symlink in the source that leads outside the allowed roots is refused, naming it.
Hidden files are skipped, as Ultralytics' own globbing skips them.
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

    ``roots``: symlinks must resolve inside them; None refuses every symlink.
    """
    collected = Collected()
    for folder in split_folders(task):
        if not (source_root / folder).exists() and not (source_root / folder).is_symlink():
            collected.errors.append({"file": folder, "line": None, "message": "required folder is missing"})
            continue
        ignored: Counter[str] = Counter()
        for rel, real in _walk(source_root, PurePosixPath(folder), roots=roots, errors=collected.errors):
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


def _walk(
    source_root: Path, rel: PurePosixPath, *, roots: list[Path] | None, errors: list[dict],
    seen: frozenset[Path] = frozenset(),
) -> Iterator[tuple[PurePosixPath, Path]]:
    """Files below ``source_root/rel`` as (relative path, real path), following only symlinks that stay inside."""
    real = _real_target(source_root / rel, rel, roots=roots, errors=errors)
    if real is None or real in seen:  # refused, missing, or a symlink loop
        return
    if real.is_file():
        yield rel, real
        return
    if not real.is_dir():
        return
    with os.scandir(real) as entries:
        names = sorted(entry.name for entry in entries if not entry.name.startswith("."))
    for name in names:
        yield from _walk(source_root, rel / name, roots=roots, errors=errors, seen=seen | {real})


def _real_target(path: Path, rel: PurePosixPath, *, roots: list[Path] | None, errors: list[dict]) -> Path | None:
    if not path.is_symlink():
        return Path(os.path.realpath(path)) if path.exists() else None
    real = Path(os.path.realpath(path))
    if roots is None or containing_root(roots, real) is None:
        errors.append({"file": str(rel), "line": None, "message": "symlink points outside the allowed roots"})
        return None
    if not real.exists():
        errors.append({"file": str(rel), "line": None, "message": "broken symlink"})
        return None
    return real


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
        if not path.exists() and not path.is_symlink():
            continue
        errors: list[dict] = []
        real = _real_target(path, PurePosixPath(name), roots=roots, errors=errors)
        if errors:
            raise Unprocessable(f"{name}: {errors[0]['message']}")
        if real is None or not real.is_file():
            raise Unprocessable(f"{name} is not a file")
        if real.stat().st_size > DATA_YAML_MAX_BYTES:
            raise Unprocessable(f"{name} is larger than {DATA_YAML_MAX_BYTES} bytes")
        return name, real.read_bytes()
    return None
