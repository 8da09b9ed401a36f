"""Registering, reading and deleting datasets.

Registration works in ``<data_dir>/tmp/<uuid>``: the upload is unpacked (or the server folder mirrored) into
``dataset/files``, checked, and only then moved to ``<data_dir>/datasets/<uuid>`` and its row inserted. Any
failure, including a rollback of the request's transaction, removes the folder, so there is never a
half-registered dataset. The training code reads ``files_dir(settings, dataset)`` and writes its own YAML from
the row (class_names, kpt_shape, flip_idx); ``source-data.yaml`` is kept for reference only.

Deleting a dataset leaves a tombstone: the row stays with ``deleted_at`` set, so the models trained on it can
still say what they learned from, and the files go once that commits. Lookups, lists and the name check see
live datasets only: a deleted dataset's name can be registered again.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import event
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from imagerec.auth.scopes import Caller, check_owner
from imagerec.config import Settings
from imagerec.datasets import archive, layout, repository, validation
from imagerec.datasets.models import Dataset
from imagerec.datasets.schemas import DatasetDeleted
from imagerec.db import on_commit, utcnow
from imagerec.errors import Conflict, NotFound, Unprocessable
from imagerec.files.service import resolve_allowed
from imagerec.model_versions import service as models_service
from imagerec.tasks.repository import is_referenced_by_active_task

STORAGE_PREFIX = "datasets"
SOURCE_YAML = "source-data.yaml"


def get_or_404(session: Session, *, dataset_id: int) -> Dataset:
    dataset = repository.get_record(session, dataset_id=dataset_id)
    if dataset is None:
        raise NotFound(f"dataset {dataset_id} does not exist")
    if dataset.deleted:
        raise NotFound(f"dataset {dataset_id} not found: it was deleted on {dataset.deleted_at:%Y-%m-%d %H:%M} UTC")
    return dataset


def storage_dir(settings: Settings, dataset: Dataset) -> Path:
    """``<data_dir>/<storage_path>``: holds ``files/`` and, when the source had one, ``source-data.yaml``."""
    return settings.data_dir / dataset.storage_path


def files_dir(settings: Settings, dataset: Dataset) -> Path:
    """The Ultralytics layout of a registered dataset (images/ + labels/, or train/ + val/ for classify)."""
    return storage_dir(settings, dataset) / "files"


def register_upload(*, session: Session, settings: Settings, name: str, task: str, upload: BinaryIO,
                    created_by: str | None = None) -> Dataset:
    """Register the dataset in an uploaded zip (streamed from ``upload``)."""
    _require_free_name(session, name=name)
    with _workspace(settings) as work:
        zip_path = work / "upload.zip"
        archive.save_stream(upload, zip_path, max_bytes=settings.upload_max_bytes)
        archive.extract_zip(
            zip_path,
            work / "extract",
            max_members=settings.zip_max_members,
            max_bytes=settings.zip_max_uncompressed_bytes,
        )
        zip_path.unlink()
        source_root = archive.find_root(work / "extract")
        return _register(session, settings, work, name=name, task=task, source_root=source_root, source_path=None,
                         created_by=created_by)


def import_path(*, session: Session, settings: Settings, name: str, task: str, path: str,
                created_by: str | None = None) -> Dataset:
    """Register a server folder in place: images are linked, labels copied (see ``layout``)."""
    source_root = resolve_allowed(settings.allowed_roots, path)
    if not source_root.is_dir():
        raise Unprocessable(f"{path} is not a folder; give the folder that holds the dataset")
    _require_free_name(session, name=name)
    with _workspace(settings) as work:
        return _register(session, settings, work, name=name, task=task, source_root=source_root,
                         source_path=str(source_root), created_by=created_by)


def delete(*, session: Session, settings: Settings, dataset: Dataset, caller: Caller | None = None) -> DatasetDeleted:
    """Tombstone the row now and remove the files once that has committed; 409 while a queued or running task
    reads it. The models trained on it keep its record; the answer's notes name them."""
    if caller is not None:
        check_owner(caller, created_by=dataset.created_by, what=f"dataset {dataset.id}")
    if is_referenced_by_active_task(session, ref_kind="dataset", ref_id=dataset.id):
        raise Conflict(f"dataset {dataset.id} is used by a queued or running task")
    folder = _checked_storage_dir(settings, dataset.storage_path)
    notes = models_service.dataset_delete_notes(session, dataset=dataset)
    repository.mark_deleted(session, dataset=dataset, at=utcnow())
    on_commit(session, lambda: archive.remove_tree(folder))
    return DatasetDeleted(id=dataset.id, notes=notes)


def _require_free_name(session: Session, *, name: str) -> None:
    if repository.name_taken(session, name=name):
        raise Conflict(f"a dataset named {name!r} already exists")
    # SQLite transactions here begin IMMEDIATE, holding the write lock; nothing is pending yet, so end this
    # read-only transaction rather than block every writer (training progress) while the upload is checked.
    session.rollback()


def _register(
    session: Session, settings: Settings, work: Path, *, name: str, task: str, source_root: Path,
    source_path: str | None, created_by: str | None,
) -> Dataset:
    staged = work / "dataset"
    metadata, summary = _stage_and_validate(settings, staged, task=task, source_root=source_root,
                                            link_images=source_path is not None)
    storage_path = f"{STORAGE_PREFIX}/{uuid.uuid4().hex}"
    final = settings.data_dir / storage_path
    os.replace(staged, final)
    _remove_on_rollback(session, final)
    dataset = Dataset(
        name=name,
        task=task,
        storage_path=storage_path,
        source="path" if source_path else "upload",
        source_path=source_path,
        class_names=metadata.class_names,
        kpt_shape=metadata.kpt_shape,
        flip_idx=metadata.flip_idx,
        summary=summary,
        created_by=created_by,
    )
    try:
        return repository.add(session, dataset=dataset)
    except IntegrityError as error:  # a concurrent registration took the name
        archive.remove_tree(final)
        raise Conflict(f"a dataset named {name!r} already exists") from error


def _stage_and_validate(
    settings: Settings, staged: Path, *, task: str, source_root: Path, link_images: bool
) -> tuple[validation.Metadata, dict]:
    roots = settings.allowed_roots if link_images else None
    collected = layout.collect(source_root, task=task, roots=roots)
    data_yaml = layout.find_data_yaml(source_root, roots=roots) if task != "classify" else None
    files = staged / "files"
    files.mkdir(parents=True)
    layout.stage(collected, files, link_images=link_images)
    if data_yaml is not None:
        (staged / SOURCE_YAML).write_bytes(data_yaml[1])
    report = validation.Report(errors=list(collected.errors))
    for warning in collected.warnings:
        report.warn(warning)
    metadata = validation.read_metadata(task=task, data_yaml=data_yaml, files_dir=files)
    validation.validate(files, task=task, metadata=metadata, max_pixels=settings.image_max_pixels, report=report)
    report.raise_if_invalid()
    return metadata, report.summary()


def _remove_on_rollback(session: Session, folder: Path) -> None:
    """If the request's transaction rolls back after the folder was moved into place, remove the folder."""

    def remove(_session: Session) -> None:
        archive.remove_tree(folder)

    event.listen(session, "after_rollback", remove)
    on_commit(session, lambda: event.remove(session, "after_rollback", remove))


@contextmanager
def _workspace(settings: Settings) -> Iterator[Path]:
    work = settings.data_dir / "tmp" / uuid.uuid4().hex
    work.mkdir(parents=True)
    try:
        yield work
    finally:
        archive.remove_tree(work)


def _checked_storage_dir(settings: Settings, storage_path: str) -> Path:
    """The dataset folder, refusing anything outside ``<data_dir>/datasets`` before it is ever removed."""
    folder = Path(os.path.abspath(settings.data_dir / storage_path))
    if folder.parent != settings.data_dir / STORAGE_PREFIX:
        raise Unprocessable(f"dataset storage path {storage_path!r} is not inside the datasets folder")
    return folder

