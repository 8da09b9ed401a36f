"""The ``dataset_import`` child: a large dataset read, checked and registered like a small one, with progress.

The steps are the request's (``service.stage_new``), in ``<run dir>/work``; the upload waits in the run folder
as ``upload.zip`` until the task ends, so an interrupted import runs again from it when resumed. The dataset's
row and the task's success are one transaction: a dataset is registered exactly when its task succeeded. A
cancel is seen between samples; it, and any failure, leaves nothing behind but the task's record and log (the
problems of an invalid dataset are logged, up to ``MAX_LOGGED``).
"""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from imagerec.config import Settings
from imagerec.datasets import archive, registration, service
from imagerec.datasets.models import Dataset
from imagerec.datasets.schemas import DatasetImportTask
from imagerec.db import retry_busy, unit_of_work
from imagerec.errors import ImagerecError
from imagerec.files.service import resolve_allowed
from imagerec.tasks import repository as tasks_repository
from imagerec.tasks.models import TaskStatus
from imagerec.tasks.reporter import TaskReporter

MAX_LOGGED = 50
CHECK_EVERY = 200  # samples between looks at the cancel flag


class ImportCancelled(Exception):
    pass


def _progress(reporter: TaskReporter, expected: int):
    started = time.monotonic()

    def on_sample(count: int) -> None:
        if count % CHECK_EVERY:
            return
        if reporter.cancel_requested():
            raise ImportCancelled
        fraction = min(0.9, 0.9 * count / max(expected, 1))  # the checks after writing take the last tenth
        elapsed = time.monotonic() - started
        reporter.progress(fraction=fraction, eta_seconds=elapsed * (1 - fraction) / fraction if fraction else None)

    return on_sample


def _load(task_id: int, factory: sessionmaker[Session]) -> tuple[DatasetImportTask, Path, str | None]:
    with unit_of_work(factory) as session:
        task = tasks_repository.get(session, task_id)
        return DatasetImportTask.model_validate(task.params), Path(task.run_dir), task.created_by


def _source(settings: Settings, params: DatasetImportTask, run_dir: Path, work: Path) -> Path:
    if params.path is not None:
        return resolve_allowed(settings.allowed_roots, params.path)
    return registration.extract(settings, work, _moved_upload(run_dir, work))


def _moved_upload(run_dir: Path, work: Path) -> Path:
    """The upload, linked into the work folder: extraction removes its copy, the run folder keeps the original
    until the task ends."""
    target = work / registration.UPLOAD_NAME
    target.hardlink_to(run_dir / registration.UPLOAD_NAME)
    return target


def _register(factory, settings: Settings, reporter: TaskReporter, params: DatasetImportTask, staged: Path,
              finished: registration.Finished, created_by: str | None) -> int:
    def write() -> int:
        with unit_of_work(factory) as session:
            dataset = Dataset(name=params.name, task=params.task, source="path" if params.path else "upload",
                              source_path=params.path, created_by=created_by)
            dataset = service.insert(session, settings, staged, dataset, finished)
            tasks_repository.transition(session, task_id=reporter.task_id, from_=[TaskStatus.running],
                                        to=TaskStatus.succeeded, progress=1.0, report={"dataset_id": dataset.id})
            tasks_repository.append_log(session, task_id=reporter.task_id,
                                        message=f"registered dataset {dataset.id} ({params.name!r})")
            return dataset.id

    return retry_busy(write, what="the dataset's registration", deadline_seconds=None)


def run(*, task_id: int, settings: Settings, session_factory: sessionmaker[Session]) -> None:
    reporter = TaskReporter(task_id=task_id, session_factory=session_factory)
    params, run_dir, created_by = _load(task_id, session_factory)
    run_dir = settings.data_dir / run_dir
    work = run_dir / "work"
    archive.remove_tree(work)  # a previous, interrupted attempt's
    work.mkdir(parents=True)
    try:
        source_root = _source(settings, params, run_dir, work)
        reporter.log(f"reading {params.images} images")
        staged, finished = service.stage_new(settings, work, task=params.task, source_root=source_root,
                                             link_images=params.path is not None, choice=params.choice,
                                             on_sample=_progress(reporter, params.images))
        _register(session_factory, settings, reporter, params, staged, finished, created_by)
    except ImportCancelled:
        reporter.end(to=TaskStatus.cancelled, message="cancelled: nothing was registered")
    except ImagerecError as error:  # the user's data: the same answer the request would have had
        for problem in (error.details or [])[:MAX_LOGGED]:
            reporter.log(f"{problem.get('file')}:{problem.get('line') or ''} {problem.get('message')}",
                         level="warning")
        reporter.end(to=TaskStatus.failed, message=f"failed: {error.message}", error=error.message)
    finally:
        archive.remove_tree(work)
    (run_dir / registration.UPLOAD_NAME).unlink(missing_ok=True)
