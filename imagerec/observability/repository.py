"""The queries a scrape makes: two small reads of the task table, through a read session (no write lock)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Row, func, select
from sqlalchemy.orm import Session

from imagerec.tasks.models import Task, TaskStatus


def count_by_kind_and_status(session: Session) -> dict[tuple[str, str], int]:
    rows = session.execute(select(Task.kind, Task.status, func.count()).group_by(Task.kind, Task.status))
    return {(kind, status): count for kind, status, count in rows}


def running_progress(session: Session) -> Sequence[Row]:
    """id, kind, type, epoch, total_epochs, progress, eta_seconds of every running task (columns only: a whole
    ``Task`` would also run its ``model_id`` subquery)."""
    query = select(Task.id, Task.kind, Task.type, Task.epoch, Task.total_epochs, Task.progress, Task.eta_seconds)
    return session.execute(query.where(Task.status == TaskStatus.running).order_by(Task.id)).all()
