"""Starting a pre-labelling job (API side): resolve model and source, check the parameters, queue the task."""

from __future__ import annotations

from sqlalchemy.orm import Session

from imagerec.annotation.predictions import check_shapes, resolve_classes
from imagerec.config import Settings
from imagerec.datasets import repository as datasets_repository
from imagerec.datasets import service as datasets_service
from imagerec.errors import Conflict, NotFound, Unprocessable
from imagerec.executor.base import Executor
from imagerec.files.service import resolve_allowed
from imagerec.model_versions import repository as models_repository
from imagerec.model_versions import service as models_service
from imagerec.model_versions.models import ModelVersion
from imagerec.prelabel.schemas import PrelabelRequest
from imagerec.tasks.kinds import queue_task
from imagerec.tasks.models import Task, TaskKind

TASK_TYPE = "prelabel"


def _model(session: Session, *, request: PrelabelRequest, task: str | None) -> ModelVersion:
    if request.model_id is not None:
        return models_service.get_or_404(session, model_id=request.model_id)
    model = models_repository.get_default(session, task=task)
    if model is None:
        raise NotFound(f"no default {task} model: give model_id, or set one with POST /api/models/{{id}}/default")
    return model


def start(session: Session, *, settings: Settings, executor: Executor, request: PrelabelRequest,
          created_by: str | None = None) -> Task:
    params = request.model_dump(mode="json")
    refs: list[tuple[str, int, str]] = []
    dataset = None
    if request.dataset_id is not None:
        dataset = datasets_service.get_or_404(session, dataset_id=request.dataset_id)
        refs.append(("dataset", dataset.id, "source"))
    else:
        folder = resolve_allowed(settings.allowed_roots, request.path)
        if not folder.is_dir():
            raise Unprocessable(f"{request.path} is not a folder of images")
        params["path"] = str(folder)
    model = _model(session, request=request, task=dataset.task if dataset else None)
    if dataset is not None and model.task != dataset.task:
        raise Unprocessable(f"model {model.id} is a {model.task} model but dataset {dataset.id} is {dataset.task}")
    check_shapes(request.shapes, model.task)
    resolve_classes(request.classes, dict(enumerate(model.class_names)))
    if request.name is not None and datasets_repository.name_taken(session, name=request.name):
        raise Conflict(f"a dataset named {request.name!r} already exists")
    refs.append(("model", model.id, "model"))
    params["model_id"] = model.id
    source = f"dataset {dataset.id}" if dataset else "a server folder"
    return queue_task(session, executor=executor, kind=TaskKind.annotation, type_=TASK_TYPE, name=request.name,
                      params=params, refs=refs, created_by=created_by, queue=request.queue,
                      message=f"queued: pre-label {source} with model {model.id}")
