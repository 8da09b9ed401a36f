"""Registering, versioning, reading and deleting datasets.

Registration works in ``<data_dir>/tmp/<uuid>`` (see ``registration``): the upload is unpacked (or the server
folder walked), read by its format's importer, written into ``dataset/files`` in the Ultralytics layout, checked,
and only then moved to ``<data_dir>/datasets/<uuid>`` and its row inserted. Any failure, including a rollback of
the request's transaction, removes the folder, so there is never a half-registered dataset. The training code
reads ``files_dir(settings, dataset)`` and writes its own YAML from the row (class_names, kpt_shape, flip_idx).

A registered dataset never changes. ``create_version`` makes the next version from one: its parent's files as
links, minus the removed images, plus the added and relabelled ones, checked as a whole like a first upload.

Deleting a dataset leaves a tombstone: the row stays with ``deleted_at`` set, so the models trained on it can
still say what they learned from, and the files go once that commits. Lookups, lists and the name check see
live datasets only: a deleted dataset's name can be registered again.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from imagerec.auth.scopes import Caller, check_owner
from imagerec.config import Settings
from imagerec.datasets import archive, registration, repository, staging, stats, validation, versions
from imagerec.datasets.formats.base import Problems
from imagerec.datasets.layout import is_image_name
from imagerec.datasets.models import Dataset
from imagerec.datasets.schemas import DatasetDeleted, DatasetImportTask, ImportChoice
from imagerec.db import on_commit, utcnow
from imagerec.errors import Conflict, NotFound, Unprocessable
from imagerec.executor.base import Executor
from imagerec.files.service import resolve_allowed
from imagerec.model_versions import service as models_service
from imagerec.tasks.kinds import queue_task
from imagerec.tasks.models import Task, TaskKind
from imagerec.tasks.repository import is_referenced_by_active_task


def get_or_404(session: Session, *, dataset_id: int) -> Dataset:
    dataset = repository.get_record(session, dataset_id=dataset_id)
    if dataset is None:
        raise NotFound(f"dataset {dataset_id} does not exist")
    if dataset.deleted:
        raise NotFound(f"dataset {dataset_id} not found: it was deleted on {dataset.deleted_at:%Y-%m-%d %H:%M} UTC")
    return dataset


def storage_dir(settings: Settings, dataset: Dataset) -> Path:
    """``<data_dir>/<storage_path>``: holds ``files/`` and what cannot live in the layout (``difficult.json``)."""
    return settings.data_dir / dataset.storage_path


def files_dir(settings: Settings, dataset: Dataset) -> Path:
    """The Ultralytics layout of a registered dataset (images/ + labels/, or train/ + val/ for classify)."""
    return storage_dir(settings, dataset) / "files"


def read_stats(settings: Settings, dataset: Dataset) -> dict:
    """Per split and class: images, instances, backgrounds, box histograms; computed when it registered."""
    path = storage_dir(settings, dataset) / registration.STATS_FILE
    if not path.is_file():  # registered before stats existed, or made by a pre-labelling task
        return stats.compute_stats(files_dir(settings, dataset), task=dataset.task,
                                   metadata=dataset_metadata(dataset)).as_dict()
    return json.loads(path.read_text())


def manifest(settings: Settings, dataset: Dataset) -> dict:
    found = versions.read_manifest(storage_dir(settings, dataset))
    if found is not None:
        return found
    files = files_dir(settings, dataset)
    hashes = stats.compute_stats(files, task=dataset.task, metadata=dataset_metadata(dataset)).image_hashes
    return versions.build_manifest(files, task=dataset.task, metadata=dataset_metadata(dataset), image_hashes=hashes)


def diff(*, session: Session, settings: Settings, dataset: Dataset, from_id: int) -> dict:
    """What changed from dataset ``from_id`` (an earlier version, usually) to ``dataset``."""
    base = get_or_404(session, dataset_id=from_id)
    if base.task != dataset.task:
        raise Unprocessable(f"dataset {from_id} is a {base.task} dataset, {dataset.id} a {dataset.task} one")
    changes = versions.diff(manifest(settings, base), manifest(settings, dataset))
    return {"from": _version_ref(base), "to": _version_ref(dataset), **changes,
            "classes": {"added": [n for n in dataset.class_names if n not in base.class_names],
                        "removed": [n for n in base.class_names if n not in dataset.class_names]}}


def _version_ref(dataset: Dataset) -> dict:
    return {"id": dataset.id, "name": dataset.name, "version": dataset.version, "content_hash": dataset.content_hash}


def dataset_metadata(dataset: Dataset) -> validation.Metadata:
    return validation.Metadata(dataset.class_names, kpt_shape=dataset.kpt_shape, flip_idx=dataset.flip_idx)


def register_upload(*, session: Session, settings: Settings, name: str, task: str, upload: BinaryIO,
                    choice: ImportChoice | None = None, created_by: str | None = None,
                    executor: Executor | None = None) -> Dataset | Task:
    """Register the dataset in an uploaded zip (streamed from ``upload``); a large one (with an executor) becomes
    a ``dataset_import`` task instead, and the zip waits for it in the task's run folder."""
    _require_free_name(session, name=name)
    choice = choice or ImportChoice()
    with registration.workspace(settings) as work:
        zip_path = registration.save_upload(settings, work, upload)
        images = archive.count_images(zip_path)
        if executor is not None and images >= settings.dataset_import_task_min_images:
            return _queue_import(session, executor, settings, params=DatasetImportTask(
                name=name, task=task, choice=choice, images=images), upload=zip_path, created_by=created_by)
        source_root = registration.extract(settings, work, zip_path)
        return _register(session, settings, work, name=name, task=task, source_root=source_root, source_path=None,
                         choice=choice, created_by=created_by)


def import_path(*, session: Session, settings: Settings, name: str, task: str, path: str,
                choice: ImportChoice | None = None, created_by: str | None = None,
                executor: Executor | None = None) -> Dataset | Task:
    """Register a server folder in place: images are linked, labels copied (see ``staging``); a large one (with
    an executor) becomes a ``dataset_import`` task."""
    source_root = resolve_allowed(settings.allowed_roots, path)
    if not source_root.is_dir():
        raise Unprocessable(f"{path} is not a folder; give the folder that holds the dataset")
    _require_free_name(session, name=name)
    choice = choice or ImportChoice()
    images = _count_images(source_root, limit=settings.dataset_import_task_min_images)
    if executor is not None and images >= settings.dataset_import_task_min_images:
        return _queue_import(session, executor, settings, params=DatasetImportTask(
            name=name, task=task, choice=choice, path=str(source_root), images=images), upload=None,
            created_by=created_by)
    with registration.workspace(settings) as work:
        return _register(session, settings, work, name=name, task=task, source_root=source_root,
                         source_path=str(source_root), choice=choice, created_by=created_by)


def _queue_import(session: Session, executor: Executor, settings: Settings, *, params: DatasetImportTask,
                  upload: Path | None, created_by: str | None) -> Task:
    counted = f"{params.images}+" if params.path else str(params.images)
    task = queue_task(session, executor=executor, kind=TaskKind.dataset_import, type_="path" if params.path else
                      "upload", params=params.model_dump(mode="json"), refs=[], name=params.name,
                      message=f"importing {counted} images as dataset {params.name!r}", created_by=created_by)
    if upload is not None:
        run_dir = settings.data_dir / task.run_dir
        run_dir.mkdir(parents=True, exist_ok=True)
        os.replace(upload, run_dir / registration.UPLOAD_NAME)
        registration.remove_on_rollback(session, run_dir)
    return task


def _count_images(root: Path, *, limit: int) -> int:
    """Images below ``root``, counting no further than ``limit`` (enough to choose between 201 and 202)."""
    count = 0
    for _folder, _dirs, names in os.walk(root, followlinks=True):
        count += sum(1 for name in names if is_image_name(name))
        if count >= limit:
            break
    return count


def delete(*, session: Session, settings: Settings, dataset: Dataset, caller: Caller | None = None) -> DatasetDeleted:
    """Tombstone the row now and remove the files once that has committed; 409 while a queued or running task
    reads it. The models trained on it keep its record; the answer's notes name them."""
    if caller is not None:
        check_owner(caller, created_by=dataset.created_by, what=f"dataset {dataset.id}")
    if is_referenced_by_active_task(session, ref_kind="dataset", ref_id=dataset.id):
        raise Conflict(f"dataset {dataset.id} is used by a queued or running task")
    folder = registration.checked_storage_dir(settings, dataset.storage_path)
    notes = models_service.dataset_delete_notes(session, dataset=dataset)
    repository.mark_deleted(session, dataset=dataset, at=utcnow())
    on_commit(session, lambda: _remove_folder(folder))
    return DatasetDeleted(id=dataset.id, notes=notes)


def _remove_folder(folder: Path) -> None:
    versions.release_base(folder)  # later versions' manifests are deltas on this one's
    archive.remove_tree(folder)


def _require_free_name(session: Session, *, name: str) -> None:
    if repository.name_taken(session, name=name):
        raise Conflict(f"a dataset named {name!r} already exists")
    # SQLite transactions here begin IMMEDIATE, holding the write lock; nothing is pending yet, so end this
    # read-only transaction rather than block every writer (training progress) while the upload is checked.
    session.rollback()


def _register(
    session: Session, settings: Settings, work: Path, *, name: str, task: str, source_root: Path,
    source_path: str | None, choice: ImportChoice, created_by: str | None,
) -> Dataset:
    staged, finished = stage_new(settings, work, task=task, source_root=source_root,
                                 link_images=source_path is not None, choice=choice)
    dataset = Dataset(name=name, task=task, source="path" if source_path else "upload", source_path=source_path,
                      created_by=created_by)
    return insert(session, settings, staged, dataset, finished)


def stage_new(settings: Settings, work: Path, *, task: str, source_root: Path, link_images: bool,
              choice: ImportChoice, on_sample: Callable[[int], None] | None = None
              ) -> tuple[Path, registration.Finished]:
    """Read, write and check a new dataset in ``work/dataset``; nothing is registered yet."""
    staged = work / "dataset"
    problems = Problems()
    imported, import_info = registration.read_source(settings, source_root, task=task, link_images=link_images,
                                                     choice=choice, problems=problems)
    (staged / "files").mkdir(parents=True)
    staging.write_samples(imported, staged / "files", task=task, link_images=link_images, split_request=choice.split,
                          problems=problems, class_names=imported.metadata.class_names, on_sample=on_sample)
    finished = registration.finish(settings, staged, task=task, metadata=imported.metadata, problems=problems,
                                   import_info=import_info)
    return staged, finished


def insert(session: Session, settings: Settings, staged: Path, dataset: Dataset,
            finished: registration.Finished) -> Dataset:
    dataset.storage_path = registration.place(session, settings, staged)
    dataset.class_names = finished.metadata.class_names
    dataset.kpt_shape = finished.metadata.kpt_shape
    dataset.flip_idx = finished.metadata.flip_idx
    dataset.summary = finished.summary
    dataset.content_hash = finished.content_hash
    try:
        return repository.add(session, dataset=dataset)
    except IntegrityError as error:  # a concurrent registration took the name (or the version number)
        archive.remove_tree(settings.data_dir / dataset.storage_path)
        raise Conflict(f"a dataset named {dataset.name!r} (version {dataset.version}) already exists") from error
