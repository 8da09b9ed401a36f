"""Every task kind, registered once: its request schema, its child-side runner, the scope that controls it, and
whether it can be resumed. ``queue_task`` is the one way a task is created, whatever its kind.

Adding a kind is one entry in ``KINDS`` (plus its runner module): the executor's child, the task routes'
cancel/resume/delete and the scope checks all read this map. Runners are named as ``"module:function"`` so the
API process never imports them (they import torch).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from imagerec.auth.scopes import Scope
from imagerec.db import on_commit
from imagerec.executor.base import Executor
from imagerec.tasks import repository
from imagerec.tasks.models import Task, TaskKind, TaskStatus

Ref = tuple[str, int, str]  # (ref_kind "dataset" | "model", row id, role): rows a running task reads


@dataclass(frozen=True)
class KindSpec:
    schema: str  # the request body's pydantic model, "module:Class" (documentation and tests)
    runner: str  # "module:function(task_id=, settings=, session_factory=)", imported in the child only
    control_scope: Scope  # what stopping, resuming or deleting a task of this kind needs
    resumable: bool  # may be queued again once interrupted, cancelled or failed (from its checkpoint, if any)


KINDS: dict[TaskKind, KindSpec] = {
    TaskKind.training: KindSpec(schema="imagerec.training.schemas:TrainingRequest",
                                runner="imagerec.training.runner:run", control_scope=Scope.train, resumable=True),
    TaskKind.annotation: KindSpec(schema="imagerec.prelabel.schemas:PrelabelRequest",
                                  runner="imagerec.prelabel.runner:run", control_scope=Scope.annotate,
                                  resumable=True),
    TaskKind.evaluation: KindSpec(schema="imagerec.evaluation.schemas:EvaluationRequest",
                                  runner="imagerec.evaluation.runner:run", control_scope=Scope.train,
                                  resumable=True),
    TaskKind.dataset_import: KindSpec(schema="imagerec.datasets.schemas:DatasetImportTask",
                                      runner="imagerec.datasets.runner:run", control_scope=Scope.train,
                                      resumable=True),
    TaskKind.labelstudio_training: KindSpec(schema="imagerec.labelstudio.schemas:LabelStudioTrainingTask",
                                            runner="imagerec.labelstudio.runner:run", control_scope=Scope.train,
                                            resumable=True),
}


def queue_task(session: Session, *, executor: Executor, kind: TaskKind, type_: str, params: dict,
               refs: Iterable[Ref], message: str, name: str | None = None, report: dict | None = None,
               total_epochs: int | None = None, created_by: str | None = None, queue: str | None = None) -> Task:
    """Add a queued task with its refs and first log lines; the executor hears of it once the commit lands.
    ``queue`` routes it to the workers of that Celery queue (None: the default queue)."""
    task = Task(kind=kind, type=type_, name=name, status=TaskStatus.queued, params=params, report=report,
                total_epochs=total_epochs, epoch=0 if total_epochs is not None else None, created_by=created_by,
                queue=queue)
    repository.add(session, task=task, refs=refs)
    task.run_dir = f"runs/{task.id}"
    repository.append_log(session, task_id=task.id, message=message)
    for warning in (report or {}).get("warnings", []):
        repository.append_log(session, task_id=task.id, message=warning, level="warning")
    on_commit(session, lambda: executor.submit(task.id))
    return task
