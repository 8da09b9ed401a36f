"""The Celery executor (``IMAGEREC_EXECUTOR=celery``): the API only sends messages and reads the database.

A thread of the API process:

- sends one Celery message per queued task that has none yet (``dispatched_at`` is empty), to the task's queue:
  a task committed by a request whose process died before sending is sent by the next loop, of this or another
  API process (a message sent twice is harmless, see ``celery_app``);
- ends the tasks whose worker's lease lapsed (``leases``);
- enforces cancels across machines: the request sets the flag (the task's own callback stops at the next batch,
  the worker kills the child after the grace period); a task still running well after that gets a revoke with
  terminate, which kills the worker process that supervises it.

Stopping or restarting the API touches no task: the trainings run on the workers.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from imagerec.config import Settings
from imagerec.db import read_session, unit_of_work, utcnow
from imagerec.executor import leases
from imagerec.executor.celery_app import RUN_TASK, make_celery
from imagerec.executor.wakeable import WakeableLoop
from imagerec.tasks import repository
from imagerec.workers import repository as workers_repository

DISPATCH_BATCH = 200
log = logging.getLogger(__name__)


def message_id(task_id: int) -> str:
    """A fresh id per sending: a revoked message id must never block the task's later resume."""
    return f"imagerec-{task_id}-{uuid.uuid4().hex[:12]}"


class CeleryExecutor:
    kind = "celery"

    def __init__(self, *, settings: Settings, session_factory: sessionmaker[Session]) -> None:
        self.settings = settings
        self.session_factory = session_factory
        self.app = make_celery(settings)
        self._revoked: set[str] = set()
        self._seen = {"concurrency": 0, "active_tasks": []}  # the workers' slots and tasks, as of the last step
        self.loop = WakeableLoop(self._step, poll_seconds=settings.executor_poll_seconds,
                                 name="imagerec-celery-dispatch")

    def start(self) -> None:
        self.loop.start()

    def stop(self) -> None:
        self.loop.stop()  # and nothing else: the tasks run on the workers

    def submit(self, task_id: int) -> None:
        self.loop.wake()

    def cancel(self, task_id: int) -> None:
        self.loop.wake()

    def state(self) -> dict:
        """``concurrency`` is the slots of the live workers, ``active_tasks`` the tasks they run."""
        return {"kind": self.kind, "running": self.loop.alive, "default_queue": self.settings.default_queue,
                **self._seen}

    def _step(self) -> None:
        self._dispatch()
        leases.expire(self.settings, self.session_factory)
        self._revoke_overdue()
        self._look_at_workers()

    def _look_at_workers(self) -> None:
        since = utcnow() - timedelta(seconds=self.settings.worker_lease_seconds)
        with read_session(self.session_factory) as session:
            slots = sum(row.slots for row in workers_repository.live(session, since=since) if row.kind == self.kind)
            held = workers_repository.running_by_owner(session)
        active = sorted(task_id for owner, ids in held.items() if owner.startswith(leases.CELERY_OWNER)
                        for task_id in ids)
        self._seen = {"concurrency": slots, "active_tasks": active}

    def _dispatch(self) -> None:
        while not self.loop.stopping.is_set():
            with unit_of_work(self.session_factory) as session:
                pending = [(task.id, task.queue) for task in
                           repository.undispatched(session, before=utcnow(), limit=DISPATCH_BATCH)]
            for task_id, queue in pending:
                self.app.send_task(RUN_TASK, args=[task_id], queue=queue or self.settings.default_queue,
                                   task_id=message_id(task_id))
                with unit_of_work(self.session_factory) as session:
                    repository.mark_dispatched(session, task_id=task_id)
            if len(pending) < DISPATCH_BATCH:
                return

    def _revoke_overdue(self) -> None:
        allowance = self.settings.cancel_grace_seconds + 2 * self.settings.worker_heartbeat_seconds
        with unit_of_work(self.session_factory) as session:
            overdue = [task.message_id for task in repository.overdue_cancels(
                session, worker_prefix=leases.CELERY_OWNER, cutoff=utcnow() - timedelta(seconds=allowance))]
        for message in [m for m in overdue if m and m not in self._revoked]:
            log.warning("revoking Celery message %s: its task ignored the cancel past the grace period", message)
            self.app.control.revoke(message, terminate=True, signal="SIGKILL")
            self._revoked.add(message)
