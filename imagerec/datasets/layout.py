"""The Ultralytics layout of a registered dataset, and the confined walk over a source folder.

A dataset's ``files/`` folder holds exactly the Ultralytics layout and nothing else (``staging`` writes it)::

    detect / segment / pose   images/{train,val[,test]}/…  labels/{train,val[,test]}/…
    classify                  train/<class>/…  val/<class>/…  [test/<class>/…]

``walk_source`` lists the files of a source (an unpacked upload or a server folder) for the importers. Symlinks
are followed only while every component of every path resolves inside the allowed roots (an upload: none are
followed); a link that would lead outside is refused by its path in the dataset, and nothing behind it is read.
Hidden files are skipped, as Ultralytics' own globbing skips them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from imagerec.files.service import containing_root

# Ultralytics' IMG_FORMATS: every file with one of these suffixes in a split folder is an image to it.
IMAGE_SUFFIXES = frozenset(
    {"avif", "bmp", "dng", "heic", "heif", "jp2", "jpeg", "jpg", "mpo", "png", "tif", "tiff", "webp"}
)
SPLITS = ("train", "val")  # every dataset has them; "test" is optional
DATA_YAML_NAMES = ("data.yaml", "data.yml", "dataset.yaml", "dataset.yml")
DATA_YAML_MAX_BYTES = 1024 * 1024


def is_image_name(name: str) -> bool:
    return name.rpartition(".")[2].lower() in IMAGE_SUFFIXES


def files_under(folder: Path) -> Iterator[str]:
    """The files under a dataset's folder as posix paths relative to it, each folder's files sorted before its
    sorted subfolders. Symlinked folders are followed, each real folder once (no loops). Strings, not Paths:
    this runs once per file of a dataset, and a version reads most of them only by name."""
    seen: set[str] = set()
    top = str(folder)
    for root, dirs, names in os.walk(top, followlinks=True):
        real = os.path.realpath(root)
        if real in seen:
            dirs.clear()
            continue
        seen.add(real)
        dirs.sort()
        prefix = "" if root == top else os.path.relpath(root, top).replace(os.sep, "/") + "/"
        for name in sorted(names):
            yield prefix + name


def walk_source(source_root: Path, *, roots: list[Path] | None, errors: list[dict]) -> dict[str, Path]:
    """Every (non-hidden) file under ``source_root``: relative posix path -> real path, confined as ``collect``."""
    walker = _Walker.for_source(source_root, roots=roots, errors=errors)
    return {rel.as_posix(): real for rel, real in walker.walk(walker.root, PurePosixPath("."))
            if rel.parts and not rel.name.endswith(".cache")}


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
