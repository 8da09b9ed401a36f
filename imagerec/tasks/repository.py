"""Every query on tasks. Status changes are conditional UPDATEs whose row count says whether they happened."""

from __future__ import annotations

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from imagerec.tasks.models import ACTIVE, Task, TaskRef


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
