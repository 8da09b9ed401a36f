"""Every query on worker rows and the deployment row."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from imagerec.db import utcnow
from imagerec.tasks.models import Task, TaskStatus
from imagerec.workers.models import Deployment, Worker


def beat(session: Session, *, worker: Worker) -> None:
    """Write ``worker``'s row (a new one on its first beat)."""
    moved = session.execute(update(Worker).where(Worker.name == worker.name)
                            .values(heartbeat_at=utcnow(), slots=worker.slots, queues=worker.queues)
                            .execution_options(synchronize_session=False)).rowcount
    if not moved:
        session.add(worker)


def remove(session: Session, *, name: str) -> None:
    session.execute(delete(Worker).where(Worker.name == name))


def live(session: Session, *, since: datetime) -> Sequence[Worker]:
    return session.scalars(select(Worker).where(Worker.heartbeat_at >= since).order_by(Worker.name)).all()


def remove_gone(session: Session, *, before: datetime) -> int:
    """Rows of workers silent since ``before`` (long after their tasks' leases lapsed)."""
    return session.execute(delete(Worker).where(Worker.heartbeat_at < before)).rowcount


def running_by_owner(session: Session) -> dict[str, list[int]]:
    """Running task ids per ``worker`` value."""
    rows = session.execute(select(Task.worker, Task.id).where(Task.status == TaskStatus.running).order_by(Task.id))
    held: dict[str, list[int]] = {}
    for worker, task_id in rows:
        held.setdefault(worker or "", []).append(task_id)
    return held


def deployment(session: Session) -> Deployment | None:
    return session.get(Deployment, 1)


def add_deployment(session: Session, *, token: str) -> None:
    session.add(Deployment(id=1, data_dir_token=token))
