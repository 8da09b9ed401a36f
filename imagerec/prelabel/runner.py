"""The pre-labelling child: predict image by image, write a new dataset, register it (also when cancelled)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from imagerec.annotation.schemas import AnnotateParams, ImageAnnotations
from imagerec.config import Settings
from imagerec.datasets import repository as datasets_repository
from imagerec.datasets.models import Dataset
from imagerec.db import unit_of_work
from imagerec.prelabel import output, sources
from imagerec.prelabel.schemas import PrelabelMode, PrelabelRequest
from imagerec.prelabel.writer import DatasetWriter
from imagerec.tasks import repository
from imagerec.tasks.reporter import TaskReporter


@dataclass
class Job:
    task_id: int
    request: PrelabelRequest
    params: AnnotateParams
    model_path: Path
    model_name: str
    model_imgsz: int
    source: Dataset | None  # detached copy of the source dataset row, or None for a folder
    task: str
    created_by: str | None = None  # the key that started the job; the dataset it writes records it too


def _load(*, task_id: int, settings: Settings, factory: sessionmaker[Session]) -> Job:
    from imagerec.model_versions import repository as models_repository

    with unit_of_work(factory) as session:
        row = repository.get(session, task_id)
        request = PrelabelRequest.model_validate(row.params)
        model = models_repository.get(session, request.model_id)  # a deleted one has no weights
        if model is None:
            raise LookupError(f"model {request.model_id} no longer exists")
        source = datasets_repository.get(session, dataset_id=request.dataset_id) if request.dataset_id else None
        if request.dataset_id and source is None:
            raise LookupError(f"dataset {request.dataset_id} no longer exists")
        params = AnnotateParams.model_validate(request.model_dump(include=set(AnnotateParams.model_fields)))
        return Job(task_id, request, params, settings.data_dir / model.weights_path, model.name, model.imgsz,
                   source, model.task, row.created_by)


def _items(job: Job, settings: Settings) -> tuple[list[sources.SourceItem], list[str]]:
    if job.source is not None:
        files_dir = settings.data_dir / job.source.storage_path / "files"
        return sources.from_dataset(files_dir, task=job.task), []
    return sources.from_folder(Path(job.request.path), roots=settings.allowed_roots)


def _predict_all(job: Job, *, settings: Settings, items, writer: DatasetWriter, predictor: output.Predictor,
                 reporter: TaskReporter) -> tuple[int, list[ImageAnnotations], list[str]]:
    started, done, predicted, warnings = time.monotonic(), 0, [], []
    for item in items:
        if reporter.cancel_requested():
            break
        if job.request.mode == PrelabelMode.fill_missing and item.labelled:
            writer.keep_human(item)
        else:
            annotations = predictor.annotate(item, settings=settings)
            if annotations is None:
                warnings.append(f"{item.split}/{item.rel}: not a readable image; skipped")
            else:
                writer.write_predicted(item, annotations)
                predicted.append(annotations)
        done += 1
        fraction = done / max(len(items), 1)
        eta = (time.monotonic() - started) * (1 - fraction) / fraction
        reporter.progress(fraction=fraction, eta_seconds=eta)
    return done, predicted, warnings


def run(*, task_id: int, settings: Settings, session_factory: sessionmaker[Session]) -> None:
    from imagerec.training import ultralytics_env

    reporter = TaskReporter(task_id=task_id, session_factory=session_factory)
    job = _load(task_id=task_id, settings=settings, factory=session_factory)
    ultralytics_env.configure(settings)
    items, warnings = _items(job, settings)
    reporter.log(f"{len(items)} images to go through ({sum(i.labelled for i in items)} with human labels), "
                 f"mode {job.request.mode}")
    predictor = output.Predictor(job, settings=settings)
    staging = settings.data_dir / "tmp" / uuid.uuid4().hex
    writer = DatasetWriter(files_dir=staging / "files", task=job.task, kpt_dims=predictor.kpt_dims,
                           num_keypoints=predictor.num_keypoints)
    done, predicted, skipped = _predict_all(job, settings=settings, items=items, writer=writer,
                                            predictor=predictor, reporter=reporter)
    output.register(job, settings=settings, factory=session_factory, staging=staging, writer=writer,
                    predictor=predictor, predicted=predicted, warnings=warnings + skipped,
                    total=len(items), done=done, cancelled=reporter.cancel_requested())
