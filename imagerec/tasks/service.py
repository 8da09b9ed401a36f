"""Task control shared by every kind of task: cancel, resume, delete."""

from __future__ import annotations

import shutil
from pathlib import Path

from sqlalchemy.orm import Session

from imagerec.auth.scopes import Caller, check_owner
from imagerec.config import Settings
from imagerec.db import on_commit
from imagerec.errors import Conflict, Forbidden, NotFound
from imagerec.executor.base import Executor
from imagerec.tasks import repository
from imagerec.tasks.kinds import KINDS
from imagerec.tasks.models import RESUMABLE, Task, TaskKind, TaskStatus

# A task kind that can resume keeps its resumable checkpoint here, inside its run dir.
RESUME_CHECKPOINT = "resume.pt"


def get_or_404(session: Session, *, task_id: int, kind: str | None = None) -> Task:
    task = repository.get(session, task_id)
    if task is None or (kind is not None and task.kind != kind):
        raise NotFound(f"task {task_id} not found")
    return task


def get_controlled(session: Session, *, task_id: int, kind: str | None, caller: Caller) -> Task:
    """The task, if ``caller`` may stop, resume or delete it: its kind's scope, and its own task or admin."""
    task = get_or_404(session, task_id=task_id, kind=kind)
    needed = KINDS[TaskKind(task.kind)].control_scope
    if not caller.may(needed):
        raise Forbidden(f"task {task.id} is a {task.kind} task: controlling it needs the '{needed}' scope",
                        details={"needed": [needed], "held": sorted(caller.scopes)})
    check_owner(caller, created_by=task.created_by, what=f"task {task.id}")
    return task


def cancel(session: Session, *, executor: Executor, task: Task) -> Task:
    """Queued or interrupted: cancelled at once. Running: flag it; the worker stops at the next batch and the
    executor kills it if it has not ended after the grace period. Already cancelled: nothing to do."""
    if repository.transition(
        session, task_id=task.id, from_=[TaskStatus.queued, TaskStatus.interrupted], to=TaskStatus.cancelled
    ):
        repository.append_log(session, task_id=task.id, message="cancelled before it ran")
    elif repository.request_cancel(session, task_id=task.id):
        repository.append_log(session, task_id=task.id, message="cancel requested; stopping at the next batch")
        on_commit(session, lambda: executor.cancel(task.id))
    task = repository.get(session, task.id)
    if task.status in (TaskStatus.succeeded, TaskStatus.failed):
        raise Conflict(f"task {task.id} has already finished ({task.status}); there is nothing to cancel")
    return task


def resume_checkpoint(settings: Settings, task: Task) -> Path | None:
    if task.run_dir is None:
        return None
    checkpoint = settings.data_dir / task.run_dir / RESUME_CHECKPOINT
    return checkpoint if checkpoint.is_file() else None


def resume(session: Session, *, settings: Settings, executor: Executor, task: Task) -> Task:
    """Queue an interrupted, cancelled or failed task again. It continues from its checkpoint when it has one
    (a checkpoint that already holds every epoch is validated and registered); without one it starts over."""
    if not KINDS[TaskKind(task.kind)].resumable:
        raise Conflict(f"task {task.id} is a {task.kind} task, which cannot be resumed")
    if task.status not in RESUMABLE:
        raise Conflict(f"only interrupted, cancelled or failed tasks can be resumed; task {task.id} is {task.status}")
    checkpoint = resume_checkpoint(settings, task)
    moved = repository.transition(
        session,
        task_id=task.id,
        from_=list(RESUMABLE),
        to=TaskStatus.queued,
        finished_at=None,
        resume_requested=True,
        cancel_requested=False,
        cancel_requested_at=None,
        dispatched_at=None,
        error=None,
    )
    if not moved:
        raise Conflict(f"task {task.id} changed state meanwhile; try again")
    how = "continues from its checkpoint" if checkpoint else "has no checkpoint yet, so it starts from the beginning"
    repository.append_log(session, task_id=task.id, message=f"resume requested; queued (the task {how})")
    on_commit(session, lambda: executor.submit(task.id))
    return repository.get(session, task.id)


def delete(session: Session, *, settings: Settings, task: Task) -> None:
    if not repository.remove_unless_active(session, task_id=task.id):
        raise Conflict(f"task {task.id} is {task.status}; cancel it before deleting it")
    session.expunge(task)
    run_dir = settings.data_dir / task.run_dir if task.run_dir else None
    if run_dir is not None:
        on_commit(session, lambda: shutil.rmtree(run_dir, ignore_errors=True))
