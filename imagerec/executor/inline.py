"""Tasks a task's child runs itself, one after another: a Label Studio training's own training and evaluation.

Such a sub-task is an ordinary task row (its API, log, metrics and artifacts are the same), queued and claimed
in one transaction by the child that runs it, so the executor never sees it queued: it is owned by the same
worker as its parent task, with the child's pid, and an executor that dies takes both down to ``interrupted``
together. ``InlineExecutor`` is what ``queue_task`` and ``resume`` are handed for it: it starts nothing.
"""

from __future__ import annotations

import os

from sqlalchemy.orm import Session, sessionmaker

from imagerec.config import Settings
from imagerec.executor.child import load_runner, record_failure
from imagerec.tasks import repository
from imagerec.tasks.models import Task
from imagerec.tasks.reporter import TaskReporter


class InlineExecutor:
    """The ``Executor`` of a sub-task: the calling child runs it (``run``)."""

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def submit(self, task_id: int) -> None:
        pass

    def cancel(self, task_id: int) -> None:
        pass  # the task's own callback honours the flag; a hard stop kills the parent task's child with it

    def state(self) -> dict:
        return {"kind": "inline"}


def claim(session: Session, *, task: Task, worker: str | None) -> None:
    """Take the queued ``task`` for this process, in the transaction that queued (or re-queued) it."""
    if repository.claim(session, task_id=task.id, worker=worker):
        repository.update_running(session, task_id=task.id, worker_pid=os.getpid())


def run(task_id: int, *, kind: str, settings: Settings, session_factory: sessionmaker[Session]) -> str:
    """Run the claimed task here, like a child would; its end status."""
    try:
        load_runner(kind)(task_id=task_id, settings=settings, session_factory=session_factory)
    except BaseException as error:  # the sub-task's failure is its own; the caller decides what it means
        record_failure(TaskReporter(task_id=task_id, session_factory=session_factory), error, settings)
    with session_factory() as session:
        return repository.get(session, task_id).status
