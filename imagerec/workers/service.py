"""The live workers: rows that beat within the lease timeout, their running tasks, and Celery's own view."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy.orm import Session

from imagerec.config import Settings
from imagerec.db import utcnow
from imagerec.executor.base import Executor
from imagerec.workers import repository
from imagerec.workers.schemas import CeleryView, WorkerList, WorkerRead

INSPECT_TIMEOUT_SECONDS = 1.0
log = logging.getLogger(__name__)


def _owned(held: dict[str, list[int]], name: str) -> list[int]:
    return sorted(task_id for owner, ids in held.items() if owner == name or owner.startswith(name + ":")
                  for task_id in ids)


def _celery_views(executor: Executor, nodes: list[str]) -> dict[str, CeleryView]:
    if not nodes or getattr(executor, "app", None) is None:
        return {}
    try:
        inspector = executor.app.control.inspect(timeout=INSPECT_TIMEOUT_SECONDS, destination=nodes)
        active, stats = inspector.active() or {}, inspector.stats() or {}
    except Exception as error:  # the broker is down: the database's view still answers
        log.warning("Celery inspection failed: %s", error)
        return {node: CeleryView(reachable=False, active_messages=[]) for node in nodes}
    return {node: CeleryView(reachable=node in active or node in stats,
                             active_messages=[message["id"] for message in active.get(node, [])],
                             max_concurrency=(stats.get(node) or {}).get("pool", {}).get("max-concurrency"))
            for node in nodes}


def list_live(session: Session, *, settings: Settings, executor: Executor) -> WorkerList:
    rows = repository.live(session, since=utcnow() - timedelta(seconds=settings.worker_lease_seconds))
    held = repository.running_by_owner(session)
    nodes = [row.name.split(":", 1)[1] for row in rows if row.kind == "celery"]
    views = _celery_views(executor, nodes)
    workers = [WorkerRead(name=row.name, kind=row.kind, host=row.host, pid=row.pid, queues=row.queues,
                          slots=row.slots, gpus=row.gpus, version=row.version, started_at=row.started_at,
                          heartbeat_at=row.heartbeat_at, running_tasks=_owned(held, row.name),
                          celery=views.get(row.name.split(":", 1)[1]) if row.kind == "celery" else None)
               for row in rows]
    return WorkerList(executor=settings.executor, lease_seconds=settings.worker_lease_seconds, workers=workers)
