"""The steps every registration shares, a first version or a later one, in ``<data_dir>/tmp/<uuid>``.

``read_source`` walks the source (confined), picks its format and reads it; ``staging`` writes the samples into
``dataset/files``; ``finish`` validates the whole layout, computes the stats and the manifest, and gives the
row's summary and content hash. Only then is ``dataset/`` moved to ``<data_dir>/datasets/<uuid>``. A version
starts from ``link_tree``: its parent's files as hard links (for images linked from a server folder: of the symlink),
so it costs only what changed; a label is unlinked before it is rewritten, never written through its link. What
a version holds unchanged (``inheritance``) is neither checked nor counted again: its stats are its parent's
updated by the change, and its manifest is stored as a delta on its parent's.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import event
from sqlalchemy.orm import Session

from imagerec.config import Settings
from imagerec.datasets import archive, formats, stats, validation, versions
from imagerec.datasets.formats import DatasetFormat
from imagerec.datasets.formats.base import Imported, ImportOptions, Problems, SourceTree
from imagerec.datasets.inheritance import Inheritance
from imagerec.datasets.schemas import ImportChoice
from imagerec.db import on_commit
from imagerec.errors import Unprocessable

STORAGE_PREFIX = "datasets"
STATS_FILE = "stats.json"
UPLOAD_NAME = "upload.zip"
KEPT_BESIDE_FILES = ("difficult.json",)


@dataclass(frozen=True)
class Finished:
    metadata: validation.Metadata
    summary: dict
    content_hash: str
    manifest: dict


def read_source(settings: Settings, source_root: Path, *, task: str, link_images: bool, choice: ImportChoice,
                problems: Problems) -> tuple[Imported, dict]:
    """The source's samples, and what to record about its import (format and why)."""
    tree = SourceTree.walk(source_root, roots=settings.allowed_roots if link_images else None, problems=problems)
    validation.Report(errors=problems.errors).raise_if_invalid()  # refused symlinks: nothing behind them is read
    fmt, reason = _pick_format(tree, task=task, given=choice.format)
    options = ImportOptions(task=task, kpt_shape=choice.kpt_shape, flip_idx=choice.flip_idx)
    imported = formats.module(fmt).IMPORTER.read(tree, options=options, problems=problems)
    return imported, {"format": fmt.value, "reason": reason}


def _pick_format(tree: SourceTree, *, task: str, given: DatasetFormat | None) -> tuple[DatasetFormat, str]:
    if given is None:
        return formats.detect(tree, task=task)
    formats.require_task(given, task)
    return given, "given in the request"


def finish(settings: Settings, staged: Path, *, task: str, metadata: validation.Metadata, problems: Problems,
           import_info: dict, inherited: Inheritance | None = None) -> Finished:
    """Validate ``staged/files`` (422 with every problem), then write its stats and manifest beside it."""
    files = staged / "files"
    report = validation.Report(errors=list(problems.errors), inherited=inherited)
    for warning in problems.warnings:
        report.warn(warning)
    validation.validate(files, task=task, metadata=metadata, max_pixels=settings.image_max_pixels, report=report)
    report.raise_if_invalid()
    if inherited is not None and inherited.parent_stats is not None:
        dataset_stats = stats.update_stats(files, task=task, metadata=metadata, inherited=inherited)
    else:
        dataset_stats = stats.compute_stats(files, task=task, metadata=metadata)
    for warning in dataset_stats.warnings:
        report.warn(warning)
    (staged / STATS_FILE).write_text(json.dumps(dataset_stats.as_dict()))
    manifest = versions.build_manifest(files, task=task, metadata=metadata, image_hashes=dataset_stats.image_hashes,
                                       inherited=inherited)
    base = None if inherited is None else (inherited.parent_files.parent.name, inherited.parent_manifest)
    versions.write_manifest(staged, manifest, base=base)
    summary = {**report.summary(), "import": import_info}
    return Finished(metadata, summary, versions.content_hash(manifest, metadata), manifest)


def read_stats_file(folder: Path) -> dict | None:
    path = folder / STATS_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def link_tree(parent: Path, staged: Path) -> None:
    """``staged`` starts as a copy of the parent version's folder made of links (see the module docstring)."""
    for folder, _, names in os.walk(parent / "files"):
        target_dir = os.path.join(staged, os.path.relpath(folder, parent))
        os.makedirs(target_dir, exist_ok=True)
        for name in names:  # strings, not Paths: this loop runs once per file of the dataset
            if name.endswith(".cache"):  # Ultralytics' label cache, written beside the labels by a training
                continue
            os.link(os.path.join(folder, name), os.path.join(target_dir, name), follow_symlinks=False)
    for name in KEPT_BESIDE_FILES:
        if (parent / name).is_file():
            shutil.copyfile(parent / name, staged / name)


def unpack(settings: Settings, work: Path, upload: BinaryIO) -> Path:
    return extract(settings, work, save_upload(settings, work, upload))


def save_upload(settings: Settings, work: Path, upload: BinaryIO) -> Path:
    """Stream the upload to ``work/upload.zip`` (413 past the limit)."""
    zip_path = work / UPLOAD_NAME
    archive.save_stream(upload, zip_path, max_bytes=settings.upload_max_bytes)
    return zip_path


def extract(settings: Settings, work: Path, zip_path: Path) -> Path:
    """Unpack ``zip_path`` into ``work/extract`` (checked, bounded) and remove it; returns the dataset's root."""
    archive.extract_zip(zip_path, work / "extract", max_members=settings.zip_max_members,
                        max_bytes=settings.zip_max_uncompressed_bytes)
    zip_path.unlink()
    return archive.find_root(work / "extract")


def place(session: Session, settings: Settings, staged: Path) -> str:
    """Move ``staged`` into the datasets folder; returns its storage path. A rollback removes it again."""
    storage_path = f"{STORAGE_PREFIX}/{uuid.uuid4().hex}"
    final = settings.data_dir / storage_path
    os.replace(staged, final)
    remove_on_rollback(session, final)
    return storage_path


def remove_on_rollback(session: Session, folder: Path) -> None:
    def remove(_session: Session) -> None:
        archive.remove_tree(folder)

    event.listen(session, "after_rollback", remove)
    on_commit(session, lambda: event.remove(session, "after_rollback", remove))


@contextmanager
def workspace(settings: Settings) -> Iterator[Path]:
    work = settings.data_dir / "tmp" / uuid.uuid4().hex
    work.mkdir(parents=True)
    try:
        yield work
    finally:
        archive.remove_tree(work)


def checked_storage_dir(settings: Settings, storage_path: str) -> Path:
    """The dataset folder, refusing anything outside ``<data_dir>/datasets`` before it is ever removed."""
    folder = Path(os.path.abspath(settings.data_dir / storage_path))
    if folder.parent != settings.data_dir / STORAGE_PREFIX:
        raise Unprocessable(f"dataset storage path {storage_path!r} is not inside the datasets folder")
    return folder
