"""Starting trainings (API side): checks that every mode shares, then the mode's own, then the task row."""

from __future__ import annotations

from sqlalchemy.orm import Session

from imagerec.config import Settings
from imagerec.datasets import service as datasets_service
from imagerec.datasets.models import Dataset
from imagerec.errors import NotFound, Unprocessable
from imagerec.executor.base import Executor
from imagerec.model_versions import repository as models_repository
from imagerec.tasks.kinds import queue_task
from imagerec.tasks.models import Task, TaskKind
from imagerec.training.schemas import TrainingFields, TrainingMode
from imagerec.training.strategies import STRATEGIES


def _check_starting_point(session: Session, *, settings: Settings, request: TrainingFields, dataset: Dataset) -> None:
    pretrained_weights = getattr(request, "pretrained_weights", None)
    base_model_id = getattr(request, "base_model_id", None)
    if pretrained_weights is not None:
        path = settings.pretrained_dir / pretrained_weights
        if not path.is_file():
            raise Unprocessable(
                f"pretrained weights '{pretrained_weights}' are not on this server: put the file "
                f"'{pretrained_weights}' in the server's pretrained-models folder (IMAGEREC_MODELS_DIR, by default "
                f"'pretrained' in the data dir), or start from an architecture such as 'yolov8n' (random init)"
            )
    if base_model_id is not None:
        base = models_repository.get(session, base_model_id)
        if base is None:
            raise NotFound(f"model {base_model_id} not found")
        if base.task != dataset.task:
            raise Unprocessable(
                f"model {base.id} is a {base.task} model but dataset {dataset.id} is a {dataset.task} dataset"
            )


def start(session: Session, *, settings: Settings, executor: Executor, mode: TrainingMode,
          request: TrainingFields, created_by: str | None = None) -> Task:
    strategy = STRATEGIES[mode]
    dataset = datasets_service.get_or_404(session, dataset_id=request.dataset_id)
    _check_starting_point(session, settings=settings, request=request, dataset=dataset)
    report = strategy.check(session, settings=settings, request=request, dataset=dataset)
    return queue_task(session, executor=executor, kind=TaskKind.training, type_=mode, name=request.name,
                      params=request.model_dump(mode="json"), refs=strategy.refs(request), report=report,
                      total_epochs=request.epochs, created_by=created_by, queue=request.queue,
                      message=f"queued {mode} training on dataset {dataset.id}")
