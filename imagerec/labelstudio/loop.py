"""Label Studio's "Start training", API side: queue a ``labelstudio_training`` task and answer at once.

``START_TRAINING`` (``POST /webhook``), the legacy ``POST /train``, and — when ``IMAGEREC_LABELSTUDIO_TRAIN_EVERY``
is above 0 — every that many ``ANNOTATION_CREATED``/``ANNOTATION_UPDATED`` events of a project queue one task for
the project (a second request while one is queued or running answers with that one). The project must have been
set up from a registered Label Studio (its annotations and images are pulled through that connection).

The ML backend's extra params (kept per project from ``/setup``) choose the training: ``mode`` (default
``incremental`` from the project's model when it has one, ``regular`` otherwise), ``metric`` and
``max_class_regression`` for the decision, and any field of that mode's request (``epochs``, ``imgsz``,
``batch``, …; for regular training also ``base_model_id``, a registered model to fine-tune). Incremental
training replays nothing unless the extra params ask (``replay``): each version holds every earlier annotation of
the project, so the old classes are in the data already. They are checked
here, so a bad one is a 422 (and the project's problem), not a failed task. What the task does is in
``labelstudio.runner``.
"""

from __future__ import annotations

from pydantic import ValidationError
from sqlalchemy.orm import Session

from imagerec.config import Settings
from imagerec.db import utcnow
from imagerec.errors import ImagerecError, Unprocessable
from imagerec.executor.base import Executor
from imagerec.labelstudio import projects, repository
from imagerec.labelstudio.models import LabelStudioProject
from imagerec.labelstudio.schemas import LOOP_KEYS, LabelStudioTrainingTask
from imagerec.model_versions import repository as models_repository
from imagerec.tasks import repository as tasks_repository
from imagerec.tasks.kinds import queue_task
from imagerec.tasks.models import Task, TaskKind
from imagerec.training.schemas import TrainingMode
from imagerec.training.strategies import STRATEGIES

REF_KIND = "labelstudio"  # a task_refs row: one loop task per project at a time
MODES = (TrainingMode.regular, TrainingMode.incremental)


def project_of(session: Session, payload: object) -> LabelStudioProject:
    """The project a webhook or /train names (``{"id": 3, …}``, ``"3.1718000000"`` or 3), set up before."""
    if isinstance(payload, dict):
        number, config = payload.get("id"), payload.get("label_config")
    else:
        number, config = projects.project_number(str(payload)), None
    row = projects.for_predict(session, project=str(number), label_config=config) if number else None
    if row is None:
        raise Unprocessable("this Label Studio project was never set up with imagerec: connect the model in the "
                            "project's settings (Model → Connect model) first")
    return row


def start(session: Session, *, settings: Settings, executor: Executor, row: LabelStudioProject,
          reason: str) -> tuple[Task, bool]:
    """The project's queued or running loop task, or a new one; True when it is new."""
    repository.lock_project(session, row_id=row.id)
    active = tasks_repository.active_task_referencing(session, ref_kind=REF_KIND, ref_id=row.id)
    if active is not None:
        return active, False
    if not row.labelstudio_url:
        raise Unprocessable("training from Label Studio pulls its annotations through a registered connection, "
                            "and this project's setup named no registered Label Studio")
    try:
        params = plan(session, row=row, reason=reason)
    except ImagerecError as error:
        row.problem, row.problem_at = f"training was not started: {error.message}", utcnow()
        raise
    refs = [("model", params.base_model_id, "base_model")] if params.base_model_id else []
    task = queue_task(session, executor=executor, kind=TaskKind.labelstudio_training, type_=params.mode,
                      params=params.model_dump(mode="json"), refs=[*refs, (REF_KIND, row.id, "project")],
                      name=f"Label Studio project {row.project}", queue=params.training.get("queue"),
                      message=f"queued: {params.mode} training from Label Studio project {row.project} ({reason})")
    row.last_task_id, row.annotations_since_training = task.id, 0
    return task, True


def plan(session: Session, *, row: LabelStudioProject, reason: str) -> LabelStudioTrainingTask:
    extra = row.extra_params if isinstance(row.extra_params, dict) else {}
    model = models_repository.get(session, row.model_id) if row.model_id is not None else None
    base = model.id if model is not None and model.task == row.task else None
    mode = extra.get("mode", TrainingMode.incremental if base else TrainingMode.regular)
    if mode not in MODES:
        raise Unprocessable(f"extra param mode {mode!r}: training from Label Studio runs "
                            f"{' or '.join(MODES)}")
    if mode == TrainingMode.incremental and base is None:
        raise Unprocessable("extra param mode 'incremental' needs a model to extend, and the project has none")
    training = {key: value for key, value in extra.items() if key not in LOOP_KEYS}
    if mode == TrainingMode.incremental:  # the new version holds every earlier annotation: nothing to replay
        training.setdefault("replay", {"enabled": False})
    _check_fields(mode, training, base)
    decision = {key: extra[key] for key in ("metric", "max_class_regression") if key in extra}
    try:
        return LabelStudioTrainingTask(project_row_id=row.id, labelstudio_url=row.labelstudio_url,
                                       project=row.project, mode=mode, base_model_id=base, training=training,
                                       reason=reason, **decision)
    except ValidationError as error:
        raise Unprocessable(f"extra params: {_first(error)}") from None


def _check_fields(mode: str, training: dict, base: int | None) -> None:
    fields = {**training, "dataset_id": 1} | ({"base_model_id": base} if mode == TrainingMode.incremental else {})
    if "dataset_id" in training or (mode == TrainingMode.incremental and "base_model_id" in training):
        raise Unprocessable("extra params may not name dataset_id (the loop trains on the project's new dataset "
                            "version) nor, for incremental training, base_model_id (the project's model)")
    try:
        STRATEGIES[TrainingMode(mode)].request_model.model_validate(fields)
    except ValidationError as error:
        raise Unprocessable(f"extra params: {_first(error)}") from None


def _first(error: ValidationError) -> str:
    first = error.errors()[0]
    return f"{'.'.join(str(part) for part in first['loc'])}: {first['msg']}"


def count_annotation(session: Session, *, settings: Settings, executor: Executor, row: LabelStudioProject
                     ) -> tuple[Task, bool] | None:
    """One more annotation event; a loop task once ``labelstudio_train_every`` of them have come."""
    if settings.labelstudio_train_every <= 0:
        return None
    row.annotations_since_training += 1
    if row.annotations_since_training < settings.labelstudio_train_every:
        return None
    return start(session, settings=settings, executor=executor, row=row,
                 reason=f"{row.annotations_since_training} annotations since the last training")
