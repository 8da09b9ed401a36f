"""What a training child knows about its task, loaded once from the database as plain data."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from imagerec.config import Settings
from imagerec.datasets import repository as datasets_repository
from imagerec.datasets.models import Dataset
from imagerec.db import retry_busy, unit_of_work
from imagerec.model_versions import repository as models_repository
from imagerec.model_versions.models import ModelVersion
from imagerec.tasks import repository
from imagerec.tasks.service import resume_checkpoint


@dataclass(frozen=True)
class DatasetInfo:
    id: int
    name: str
    task: str
    class_names: list[str]
    kpt_shape: list[int] | None
    flip_idx: list[int] | None
    files_dir: Path  # the Ultralytics layout: images/ + labels/, or train/<class>/ for classify


@dataclass(frozen=True)
class ModelInfo:
    id: int
    task: str
    architecture: str
    class_names: list[str]
    weights_path: Path


@dataclass(frozen=True)
class RunContext:
    task_id: int
    mode: str
    name: str | None
    settings: Settings
    params: dict[str, Any]
    run_dir: Path
    dataset: DatasetInfo
    base_model: ModelInfo | None
    resume_from: Path | None
    created_by: str | None = None  # the key that started the task; its model records it too
    # Every other dataset and model the task references (its TaskRef rows), by role: replay sources, a teacher …
    datasets_by_role: dict[str, list[DatasetInfo]] = field(default_factory=dict)
    models_by_role: dict[str, list[ModelInfo]] = field(default_factory=dict)

    @property
    def task(self) -> str:
        return self.dataset.task


def dataset_info(settings: Settings, row: Dataset) -> DatasetInfo:
    return DatasetInfo(
        id=row.id,
        name=row.name,
        task=row.task,
        class_names=list(row.class_names),
        kpt_shape=row.kpt_shape,
        flip_idx=row.flip_idx,
        files_dir=settings.data_dir / row.storage_path / "files",
    )


def model_info(settings: Settings, row: ModelVersion) -> ModelInfo:
    return ModelInfo(
        id=row.id,
        task=row.task,
        architecture=row.architecture,
        class_names=list(row.class_names),
        weights_path=settings.data_dir / row.weights_path,
    )


def load_context(*, task_id: int, settings: Settings, session_factory: sessionmaker[Session]) -> RunContext:
    return retry_busy(lambda: _load_context(task_id, settings, session_factory), what="loading the task")


def _load_context(task_id: int, settings: Settings, session_factory: sessionmaker[Session]) -> RunContext:
    with unit_of_work(session_factory) as session:
        task = repository.get(session, task_id)
        params = dict(task.params)
        dataset = datasets_repository.get(session, dataset_id=params["dataset_id"])  # a deleted one has no files
        if dataset is None:
            raise LookupError(f"dataset {params['dataset_id']} no longer exists")
        base_id = params.get("base_model_id")
        base = models_repository.get(session, base_id) if base_id else None
        if base_id and base is None:
            raise LookupError(f"base model {base_id} no longer exists")
        return RunContext(
            task_id=task.id,
            mode=task.type,
            name=task.name,
            settings=settings,
            params=params,
            run_dir=settings.data_dir / task.run_dir,
            dataset=dataset_info(settings, dataset),
            base_model=model_info(settings, base) if base else None,
            resume_from=resume_checkpoint(settings, task) if task.resume_requested else None,
            created_by=task.created_by,
            **_referenced(session, settings, task_id=task.id),
        )


def _referenced(session: Session, settings: Settings, *, task_id: int) -> dict[str, dict]:
    datasets: dict[str, list[DatasetInfo]] = {}
    models: dict[str, list[ModelInfo]] = {}
    for ref in repository.refs(session, task_id=task_id):
        if ref.ref_kind == "dataset" and ref.role != "dataset":
            row = datasets_repository.get(session, dataset_id=ref.ref_id)
            if row is None:
                raise LookupError(f"{ref.role} dataset {ref.ref_id} no longer exists")
            datasets.setdefault(ref.role, []).append(dataset_info(settings, row))
        elif ref.ref_kind == "model" and ref.role != "base_model":
            row = models_repository.get(session, ref.ref_id)
            if row is None:
                raise LookupError(f"{ref.role} model {ref.ref_id} no longer exists")
            models.setdefault(ref.role, []).append(model_info(settings, row))
    return {"datasets_by_role": datasets, "models_by_role": models}
