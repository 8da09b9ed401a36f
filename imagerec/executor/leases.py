"""Leases: how a task's owner on another machine is known to be gone.

A Celery worker's supervisor renews the lease (``heartbeat_at``) of every task it runs every
``worker_heartbeat_seconds``. A running task whose lease is older than ``worker_lease_seconds`` has lost its
worker (killed outright, its machine gone, cut off from the database): it becomes ``interrupted`` and can be
resumed on any worker; one whose cancel was asked for becomes ``cancelled``. Its old worker, should it come
back, sees the task is no longer its own and kills its child (``supervisor.renew_leases``). Whoever sweeps (the
API's executor, every worker) does it with a conditional UPDATE, so sweepers never collide.

The built-in executor's tasks (``local:`` owners) are left alone here: that executor knows its children's pids.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from imagerec.config import Settings
from imagerec.db import unit_of_work, utcnow
from imagerec.tasks import repository
from imagerec.tasks.models import TaskStatus

CELERY_OWNER = "celery:"
LAPSED = "its worker stopped sending heartbeats (killed, or its machine is gone); resume it to continue"
LAPSED_AFTER_CANCEL = "its worker stopped sending heartbeats after the cancel; its process was killed"

log = logging.getLogger(__name__)


def expire(settings: Settings, session_factory: sessionmaker[Session]) -> list[int]:
    """End the running tasks whose worker's lease lapsed; their ids."""
    cutoff = utcnow() - timedelta(seconds=settings.worker_lease_seconds)
    ended = []
    with unit_of_work(session_factory) as session:
        for task in repository.lapsed_leases(session, worker_prefix=CELERY_OWNER, cutoff=cutoff):
            to, error = ((TaskStatus.cancelled, LAPSED_AFTER_CANCEL) if task.cancel_requested
                         else (TaskStatus.interrupted, LAPSED))
            if repository.end_lapsed(session, task_id=task.id, cutoff=cutoff, to=to, error=error):
                last = f"{task.heartbeat_at:%Y-%m-%d %H:%M:%S} UTC" if task.heartbeat_at else "never"
                repository.append_log(session, task_id=task.id, level="warning",
                                      message=f"{to}: {error} (worker {task.worker}, last heartbeat {last})")
                ended.append(task.id)
    for task_id in ended:
        log.warning("task %s: its worker's lease lapsed", task_id)
    return ended
