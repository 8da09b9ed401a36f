"""Evaluations, API side: check and queue them, read them back, and serve their plots, images and overlays.

Checks before anything is queued: the dataset and every model exist and share the vision task, the split
exists, and each model has at least one class name in common with the dataset (a class only one side has is
reported in ``classes``, not an error). A deleted dataset's evaluations keep their numbers; their image
overlays answer 404 (the images are gone). A deleted model's evaluations stay readable.
"""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy.orm import Session

from imagerec.config import Settings
from imagerec.datasets import repository as datasets_repository
from imagerec.datasets import service as datasets_service
from imagerec.errors import NotFound, Unprocessable
from imagerec.evaluation import repository
from imagerec.evaluation.data import available_splits, match_classes
from imagerec.evaluation.models import Evaluation
from imagerec.evaluation.schemas import EvaluationParams, EvaluationRead, EvaluationRequest
from imagerec.executor.base import Executor
from imagerec.model_versions import repository as models_repository
from imagerec.model_versions import service as models_service
from imagerec.model_versions.models import ModelVersion
from imagerec.tasks.kinds import queue_task
from imagerec.tasks.models import TaskKind, TaskStatus

TASK_TYPE = "evaluation"
PLOT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$")


def get_or_404(session: Session, *, evaluation_id: int) -> Evaluation:
    evaluation = repository.get(session, evaluation_id)
    if evaluation is None:
        raise NotFound(f"evaluation {evaluation_id} not found")
    return evaluation


def read(session: Session, evaluation: Evaluation) -> EvaluationRead:
    answer = EvaluationRead.model_validate(evaluation)
    answer.group_ids = repository.group_ids(session, task_id=evaluation.task_id)
    answer.label_issues_count = len(evaluation.label_issues) if evaluation.label_issues is not None else None
    return answer


def _check_model(model: ModelVersion, *, dataset, split: str) -> dict[str, list[str]]:
    if model.task != dataset.task:
        raise Unprocessable(f"model {model.id} is a {model.task} model but dataset {dataset.id} is a "
                            f"{dataset.task} dataset")
    classes = match_classes(list(model.class_names), list(dataset.class_names))
    if not classes.common:
        raise Unprocessable(f"model {model.id} and dataset {dataset.id} have no class in common "
                            f"(model: {', '.join(model.class_names)}; dataset: {', '.join(dataset.class_names)})")
    return classes.as_dict()


def _check_split(settings: Settings, dataset, split: str) -> None:
    present = available_splits(settings.data_dir / dataset.storage_path / "files", dataset.task)
    if split != "all" and split not in present:
        raise Unprocessable(f"dataset {dataset.id} has no {split} split (it has: {', '.join(present)})")


def start(session: Session, *, settings: Settings, executor: Executor, request: EvaluationRequest,
          created_by: str | None = None, source: str = "request") -> list[Evaluation]:
    dataset = datasets_service.get_or_404(session, dataset_id=request.dataset_id)
    _check_split(settings, dataset, request.split)
    models = [models_service.get_or_404(session, model_id=model_id) for model_id in request.models]
    classes = {model.id: _check_model(model, dataset=dataset, split=request.split) for model in models}
    for model in models:
        models_service.weights_file(settings, model)
    params = request.model_dump(mode="json")
    refs = [("dataset", dataset.id, "dataset"), *[("model", model.id, "model") for model in models]]
    names = ", ".join(str(model.id) for model in models)
    task = queue_task(session, executor=executor, kind=TaskKind.evaluation, type_=TASK_TYPE, params=params,
                      refs=refs, created_by=created_by, queue=request.queue,
                      message=f"queued: evaluate model(s) {names} on the {request.split} split of dataset {dataset.id}")
    measured = EvaluationParams.model_validate(request.model_dump(include=set(EvaluationParams.model_fields)))
    return [repository.add(session, evaluation=Evaluation(
        task_id=task.id, model_id=model.id, dataset_id=dataset.id, split=request.split, vision_task=dataset.task,
        source=source, params=measured.model_dump(mode="json"), recorded_status=TaskStatus.queued,
        classes=classes[model.id], created_by=created_by)) for model in models]


def plots(settings: Settings, evaluation: Evaluation) -> list[dict]:
    folder = settings.data_dir / evaluation.files_dir if evaluation.files_dir else None
    if folder is None or not folder.is_dir():
        return []
    return [{"name": path.stem, "url": f"/api/evaluations/{evaluation.id}/plots/{path.stem}.png",
             "size": path.stat().st_size} for path in sorted(folder.glob("*.png")) if PLOT_NAME.match(path.stem)]


def plot_file(settings: Settings, evaluation: Evaluation, name: str) -> Path:
    folder = (settings.data_dir / evaluation.files_dir).resolve() if evaluation.files_dir else None
    if folder is None or not PLOT_NAME.match(name):
        raise NotFound(f"evaluation {evaluation.id} has no plot {name!r}")
    path = (folder / f"{name}.png").resolve()
    if path.parent != folder or not path.is_file():
        raise NotFound(f"evaluation {evaluation.id} has no plot {name!r}")
    return path


def image_file(session: Session, settings: Settings, evaluation: Evaluation, image: str) -> Path:
    dataset = datasets_repository.get(session, dataset_id=evaluation.dataset_id) if evaluation.dataset_id else None
    if dataset is None:
        raise NotFound(f"the dataset of evaluation {evaluation.id} was deleted: its images are gone")
    files_dir = (settings.data_dir / dataset.storage_path / "files").resolve()
    path = (files_dir / image).resolve()  # image names are relative to the dataset's files folder
    if not path.is_relative_to(files_dir) or not path.is_file():
        raise NotFound(f"image {image!r} is no longer in dataset {dataset.id}")
    return path


def image_or_404(session: Session, *, evaluation: Evaluation, image_id: int):
    row = repository.image(session, evaluation_id=evaluation.id, image_id=image_id)
    if row is None:
        raise NotFound(f"evaluation {evaluation.id} has no image {image_id}"
                       + ("" if evaluation.params.get("analysis") else " (it ran without the per-image analysis)"))
    return row


def model_names(session: Session, evaluation: Evaluation) -> list[str]:
    return list(models_repository.get_record(session, evaluation.model_id).class_names)  # tombstones too


def font_path() -> Path | None:
    """The font Ultralytics' plots are given too (from an installed pip package), so overlays match them."""
    from imagerec.training.ultralytics_env import bundled_font

    return bundled_font()
