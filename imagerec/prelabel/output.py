"""The model side of a pre-labelling job (predict one source image) and the end of it (register the result)."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from imagerec.annotation.formats.coco import coco_document
from imagerec.annotation.images import decode_image
from imagerec.annotation.predictions import predict_kwargs, to_annotations
from imagerec.annotation.runtimes import load_inference_model
from imagerec.annotation.schemas import ImageAnnotations, ModelSummary
from imagerec.config import Settings
from imagerec.datasets import repository as datasets_repository
from imagerec.datasets.models import Dataset
from imagerec.db import retry_busy, unit_of_work
from imagerec.errors import ImagerecError
from imagerec.prelabel.sources import SourceItem
from imagerec.prelabel.writer import DatasetWriter
from imagerec.tasks import repository
from imagerec.tasks.models import TaskStatus
from imagerec.tasks.reporter import FINAL_DEADLINE_SECONDS
from imagerec.vision import VisionTask

COCO_FILE = "annotations.coco.json"


class Predictor:
    """The job's model, with its class ids mapped onto the new dataset's classes (merged by name)."""

    def __init__(self, job, *, settings: Settings) -> None:
        self.job = job
        self.model = load_inference_model(Path(job.model_path), settings)  # ONNX Runtime on a CPU
        self.model_names = self.model.names
        self.class_names = self._merged_names(job.source.class_names if job.source else [])
        self.kpt_shape = self.model.kpt_shape
        self.kpt_dims = self.kpt_shape[1] if self.kpt_shape else 3
        self.num_keypoints = self.kpt_shape[0] if self.kpt_shape else None
        source_kpt = job.source.kpt_shape if job.source else None
        if job.task == VisionTask.pose and source_kpt and source_kpt != self.kpt_shape:
            raise ValueError(f"the model's keypoint shape {self.kpt_shape} differs from the dataset's {source_kpt}")
        self.predict_args = predict_kwargs(job.params, default_imgsz=job.model_imgsz, names=self.model_names)

    def _merged_names(self, source_names: list[str]) -> list[str]:
        return list(source_names) + [n for _, n in sorted(self.model_names.items()) if n not in source_names]

    def annotate(self, item: SourceItem, *, settings: Settings) -> ImageAnnotations | None:
        try:
            decoded = decode_image(item.image.read_bytes(), file_name=str(item.rel), settings=settings)
        except (ImagerecError, OSError):
            return None
        result = self.model.yolo.predict(decoded.array, **self.predict_args)[0]
        annotations = to_annotations(result, file_name=str(item.rel), params=self.job.params, names=self.model_names)
        return self._remapped(annotations)

    def _remapped(self, annotations: ImageAnnotations) -> ImageAnnotations:
        index = {name: i for i, name in enumerate(self.class_names)}
        instances = [i.model_copy(update={"class_id": index[i.class_name]}) for i in annotations.instances]
        labels = [label.model_copy(update={"class_id": index[label.class_name]}) for label in annotations.labels]
        return annotations.model_copy(update={"instances": instances, "labels": labels})


def _unique_name(session: Session, wanted: str) -> str:
    name, counter = wanted, 1
    while datasets_repository.name_taken(session, name=name):
        counter += 1
        name = f"{wanted}-{counter}"
    return name


def _dataset_row(job, *, name: str, storage_path: str, class_names: list[str], predictor: Predictor,
                 summary: dict) -> Dataset:
    flip_idx = job.source.flip_idx if job.source is not None else None
    return Dataset(name=name, task=job.task, storage_path=storage_path, source="prelabel", source_path=None,
                   class_names=class_names, kpt_shape=predictor.kpt_shape, flip_idx=flip_idx, summary=summary,
                   created_by=job.created_by)


def _class_names(job, writer: DatasetWriter, predictor: Predictor) -> list[str]:
    if job.task == VisionTask.classify:  # Ultralytics reads classify classes from the sorted folder names
        return sorted(p.name for split in ("train", "val") if (writer.files_dir / split).is_dir()
                      for p in (writer.files_dir / split).iterdir() if p.is_dir())
    return predictor.class_names


def register(job, *, settings: Settings, factory: sessionmaker[Session], staging: Path, writer: DatasetWriter,
             predictor: Predictor, predicted: list[ImageAnnotations], warnings: list[str], total: int, done: int,
             cancelled: bool) -> None:
    """Move the written dataset into place and register it with the task's end state, in one transaction."""
    report = {"images_total": total, "images_done": done, "images_predicted": len(predicted),
              "instances_predicted": sum(len(a.instances) for a in predicted), "dataset_id": None}
    end = TaskStatus.cancelled if cancelled else TaskStatus.succeeded
    if sum(writer.images.values()) == 0:
        shutil.rmtree(staging, ignore_errors=True)

        def end_without_dataset() -> None:
            with unit_of_work(factory) as session:
                repository.transition(session, task_id=job.task_id, from_=[TaskStatus.running], to=end,
                                      report=report)
                repository.append_log(session, task_id=job.task_id, message=f"{end}: no images written, no dataset")

        retry_busy(end_without_dataset, what="the job's end state", deadline_seconds=FINAL_DEADLINE_SECONDS)
        return
    class_names = _class_names(job, writer, predictor)
    summary_model = ModelSummary(id=job.request.model_id, name=job.model_name, task=job.task, class_names=class_names)
    staging.mkdir(parents=True, exist_ok=True)
    (staging / COCO_FILE).write_text(json.dumps(coco_document(summary_model, predicted)))
    storage_path = f"datasets/{uuid.uuid4().hex}"
    final = settings.data_dir / storage_path
    os.replace(staging, final)

    def register_dataset() -> None:
        with unit_of_work(factory) as session:
            wanted = job.request.name or f"prelabel-task{job.task_id}"
            dataset = _dataset_row(job, name=_unique_name(session, wanted), storage_path=storage_path,
                                   class_names=class_names, predictor=predictor, summary=writer.summary(warnings))
            datasets_repository.add(session, dataset=dataset)
            report["dataset_id"] = dataset.id
            repository.transition(session, task_id=job.task_id, from_=[TaskStatus.running], to=end, report=report,
                                  progress=done / max(total, 1))
            repository.append_log(session, task_id=job.task_id, message=(
                f"{end}: {done} of {total} images done, {len(predicted)} labelled by the model "
                f"({report['instances_predicted']} instances); registered dataset {dataset.id} '{dataset.name}'"))

    try:
        retry_busy(register_dataset, what="registering the dataset", deadline_seconds=FINAL_DEADLINE_SECONDS)
    except BaseException:
        shutil.rmtree(final, ignore_errors=True)
        raise
