"""Every query on tasks. Status changes are conditional UPDATEs whose row count says whether they happened."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, exists, or_, select, update
from sqlalchemy.orm import Session

from imagerec.db import utcnow
from imagerec.tasks.models import ACTIVE, ENDED, Task, TaskLog, TaskMetric, TaskRef, TaskStatus
from imagerec.text import plain


def get(session: Session, task_id: int) -> Task | None:
    return session.get(Task, task_id, populate_existing=True)


def add(session: Session, *, task: Task, refs: Iterable[tuple[str, int, str]]) -> Task:
    session.add(task)
    session.flush()
    for ref_kind, ref_id, role in refs:
        session.add(TaskRef(task_id=task.id, ref_kind=ref_kind, ref_id=ref_id, role=role))
    session.flush()
    return task


def list_tasks(
    session: Session, *, kind: str | None, status: str | None, type_: str | None, limit: int, offset: int
) -> Sequence[Task]:
    query = select(Task).order_by(Task.created_at.desc(), Task.id.desc()).limit(limit).offset(offset)
    for column, value in ((Task.kind, kind), (Task.status, status), (Task.type, type_)):
        if value is not None:
            query = query.where(column == value)
    return session.scalars(query).all()


def transition(session: Session, *, task_id: int, from_: Iterable[TaskStatus], to: TaskStatus, **values: Any) -> bool:
    """Move a task to ``to`` only if it is still in one of ``from_``; True when it moved.

    A task that ends gets its end time and loses its ETA (nothing is left to wait for)."""
    if to in ENDED:
        values.setdefault("finished_at", utcnow())
        values.setdefault("eta_seconds", None)
    if values.get("error"):
        values["error"] = plain(values["error"])
    statement = (
        update(Task)
        .where(Task.id == task_id, Task.status.in_(list(from_)))
        .values(status=to, **values)
        .execution_options(synchronize_session=False)
    )
    return session.execute(statement).rowcount == 1


def update_running(session: Session, *, task_id: int, **values: Any) -> bool:
    """Progress and metrics of a running task; ignored once the task has left ``running``."""
    statement = (
        update(Task)
        .where(Task.id == task_id, Task.status == TaskStatus.running)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return session.execute(statement).rowcount == 1


def merge_report(session: Session, *, task_id: int, values: dict) -> bool:
    """Add ``values`` to a running task's report (read and written in the caller's transaction)."""
    report = session.scalar(select(Task.report).where(Task.id == task_id))
    return update_running(session, task_id=task_id, report={**(report or {}), **values})


def request_cancel(session: Session, *, task_id: int) -> bool:
    return update_running(session, task_id=task_id, cancel_requested=True, cancel_requested_at=utcnow())


def is_cancel_requested(session: Session, *, task_id: int) -> bool:
    return bool(session.scalar(select(Task.cancel_requested).where(Task.id == task_id)))


def claim(session: Session, *, task_id: int, worker: str, message_id: str | None = None) -> bool:
    """Take the queued task ``task_id`` for ``worker`` (its lease starts now); False when it is not queued: some
    other worker has it, or it ended. This conditional UPDATE is what makes a task's owner unique."""
    now = utcnow()
    return transition(session, task_id=task_id, from_=[TaskStatus.queued], to=TaskStatus.running, worker=worker,
                      worker_pid=None, message_id=message_id, started_at=now, heartbeat_at=now,
                      attempt=Task.attempt + 1)


def claim_next(session: Session, *, worker: str) -> Task | None:
    """Atomically take the oldest queued task for ``worker``."""
    while True:
        task_id = session.scalar(
            select(Task.id).where(Task.status == TaskStatus.queued).order_by(Task.created_at, Task.id).limit(1)
        )
        if task_id is None:
            return None
        if claim(session, task_id=task_id, worker=worker):
            return get(session, task_id)


def renew_leases(session: Session, *, worker: str) -> None:
    """The heartbeat of every task ``worker`` runs (sub-tasks its children run included)."""
    session.execute(update(Task).where(Task.status == TaskStatus.running, Task.worker == worker)
                    .values(heartbeat_at=utcnow()).execution_options(synchronize_session=False))


def owners(session: Session, *, task_ids: Iterable[int]) -> dict[int, tuple[str, str | None]]:
    """Each task's status and owner."""
    rows = session.execute(select(Task.id, Task.status, Task.worker).where(Task.id.in_(list(task_ids))))
    return {task_id: (status, worker) for task_id, status, worker in rows}


def lapsed_leases(session: Session, *, worker_prefix: str, cutoff: datetime) -> Sequence[Task]:
    """Running tasks of workers of that kind whose last heartbeat is older than ``cutoff``."""
    query = select(Task).where(Task.status == TaskStatus.running, Task.worker.startswith(worker_prefix),
                               or_(Task.heartbeat_at.is_(None), Task.heartbeat_at < cutoff))
    return session.scalars(query).all()


def end_lapsed(session: Session, *, task_id: int, cutoff: datetime, to: TaskStatus, error: str) -> bool:
    """Move a running task whose lease lapsed to ``to``, unless a heartbeat came in meanwhile."""
    statement = (update(Task).where(Task.id == task_id, Task.status == TaskStatus.running,
                                    or_(Task.heartbeat_at.is_(None), Task.heartbeat_at < cutoff))
                 .values(status=to, error=plain(error), finished_at=utcnow(), eta_seconds=None)
                 .execution_options(synchronize_session=False))
    return session.execute(statement).rowcount == 1


def undispatched(session: Session, *, before: datetime, limit: int) -> Sequence[Task]:
    """Queued tasks whose message was never sent (or whose sending was lost), oldest first."""
    query = (select(Task).where(Task.status == TaskStatus.queued, Task.dispatched_at.is_(None),
                                Task.created_at < before).order_by(Task.id).limit(limit))
    return session.scalars(query).all()


def mark_dispatched(session: Session, *, task_id: int) -> None:
    session.execute(update(Task).where(Task.id == task_id, Task.status == TaskStatus.queued)
                    .values(dispatched_at=utcnow()).execution_options(synchronize_session=False))


def overdue_cancels(session: Session, *, worker_prefix: str, cutoff: datetime) -> Sequence[Task]:
    """Running tasks whose cancel was asked for before ``cutoff`` and that still run."""
    query = select(Task).where(Task.status == TaskStatus.running, Task.cancel_requested.is_(True),
                               Task.worker.startswith(worker_prefix), Task.cancel_requested_at < cutoff)
    return session.scalars(query).all()


def running_tasks(session: Session, *, worker_prefix: str) -> Sequence[Task]:
    query = select(Task).where(
        Task.status == TaskStatus.running, or_(Task.worker.is_(None), Task.worker.startswith(worker_prefix))
    )
    return session.scalars(query).all()


def cancel_requested_ids(session: Session, *, task_ids: Iterable[int]) -> set[int]:
    query = select(Task.id).where(Task.id.in_(list(task_ids)), Task.cancel_requested.is_(True))
    return set(session.scalars(query).all())


def append_log(session: Session, *, task_id: int, message: str, level: str = "info") -> None:
    session.add(TaskLog(task_id=task_id, message=plain(message), level=level))


def logs_after(session: Session, *, task_id: int, after: int, limit: int) -> Sequence[TaskLog]:
    query = (
        select(TaskLog)
        .where(TaskLog.task_id == task_id, TaskLog.id > after)
        .order_by(TaskLog.id)
        .limit(limit)
    )
    return session.scalars(query).all()


def put_metric(session: Session, *, task_id: int, epoch: int, values: dict) -> None:
    """One row per epoch; a resumed run that redoes an epoch replaces it."""
    session.execute(delete(TaskMetric).where(TaskMetric.task_id == task_id, TaskMetric.epoch == epoch))
    session.add(TaskMetric(task_id=task_id, epoch=epoch, values=values))


def metrics(session: Session, *, task_id: int) -> Sequence[TaskMetric]:
    return session.scalars(select(TaskMetric).where(TaskMetric.task_id == task_id).order_by(TaskMetric.epoch)).all()


def active_task_referencing(session: Session, *, ref_kind: str, ref_id: int) -> Task | None:
    """The oldest queued or running task with that ref."""
    query = (select(Task).join(TaskRef, TaskRef.task_id == Task.id)
             .where(TaskRef.ref_kind == ref_kind, TaskRef.ref_id == ref_id, Task.status.in_(ACTIVE))
             .order_by(Task.id).limit(1))
    return session.scalar(query)


def is_referenced_by_active_task(session: Session, *, ref_kind: str, ref_id: int) -> bool:
    query = select(
        exists().where(
            TaskRef.ref_kind == ref_kind,
            TaskRef.ref_id == ref_id,
            TaskRef.task_id == Task.id,
            Task.status.in_(ACTIVE),
        )
    )
    return bool(session.scalar(query))


def refs(session: Session, *, task_id: int) -> Sequence[TaskRef]:
    return session.scalars(select(TaskRef).where(TaskRef.task_id == task_id)).all()


def remove_unless_active(session: Session, *, task_id: int) -> bool:
    statement = delete(Task).where(Task.id == task_id, Task.status.not_in(ACTIVE))
    return session.execute(statement.execution_options(synchronize_session=False)).rowcount == 1
