"""The built-in executor: a thread in the API process that claims queued tasks from the database and runs
each in its own child process (see ``supervisor``). The child reports through the database; this thread only
watches exits, enforces cancels and keeps this process's worker row and its tasks' leases fresh.

Ownership (see ``ownership``): children die with this process, and at start the executor stops any process
still holding the run folder of a task left ``running`` by a server that is gone, before it marks the task
``interrupted`` — so a restarted server never lets two processes work on one task."""

from __future__ import annotations

import logging
import os
import socket

from sqlalchemy.orm import Session, sessionmaker

from imagerec.config import Settings
from imagerec.db import retry_busy, unit_of_work
from imagerec.executor import ownership
from imagerec.executor.supervisor import Supervisor
from imagerec.executor.wakeable import WakeableLoop
from imagerec.tasks import repository
from imagerec.tasks.models import TaskStatus
from imagerec.workers.heartbeat import Heartbeat

INTERRUPTED = "the server stopped while the task ran; resume it to continue"

log = logging.getLogger(__name__)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class LocalExecutor:
    kind = "local"

    def __init__(self, *, settings: Settings, session_factory: sessionmaker[Session]) -> None:
        self.settings = settings
        self.session_factory = session_factory
        self.host_prefix = f"{self.kind}:{socket.gethostname()}:"
        self.worker_name = f"{self.host_prefix}{os.getpid()}"
        self.supervisor = Supervisor(settings=settings, session_factory=session_factory, owner=self.worker_name)
        self.heartbeat = Heartbeat(session_factory, settings=settings, name=self.worker_name, kind=self.kind,
                                   queues=[], slots=settings.executor_concurrency)
        self.loop = WakeableLoop(self._step, poll_seconds=settings.executor_poll_seconds, name="imagerec-executor")

    @property
    def children(self) -> dict:
        return self.supervisor.children

    # -- interface ---------------------------------------------------------------------------------------------
    def start(self) -> None:
        self._interrupt_orphans()
        self.loop.start()

    def stop(self) -> None:
        self.loop.stop()
        for task_id in self.supervisor.kill_all():
            self._mark_interrupted(task_id, note="interrupted: the server stopped while the task ran")
        self.heartbeat.leave()

    def _mark_interrupted(self, task_id: int, *, note: str) -> None:
        def write() -> None:
            with unit_of_work(self.session_factory) as session:
                if repository.transition(session, task_id=task_id, from_=[TaskStatus.running],
                                         to=TaskStatus.interrupted, error=INTERRUPTED):
                    repository.append_log(session, task_id=task_id, level="warning",
                                          message=f"{note}; resume it to continue")

        retry_busy(write, what=f"interrupting task {task_id}")

    def submit(self, task_id: int) -> None:
        self.loop.wake()

    def cancel(self, task_id: int) -> None:
        self.loop.wake()

    def state(self) -> dict:
        return {
            "kind": self.kind,
            "running": self.loop.alive,
            "concurrency": self.settings.executor_concurrency,
            "active_tasks": sorted(self.children),
        }

    # -- loop --------------------------------------------------------------------------------------------------
    def _step(self) -> None:
        self.supervisor.tick()
        self.heartbeat.beat()
        self._claim()

    def _claim(self) -> None:
        while len(self.children) < self.settings.executor_concurrency and not self.loop.stopping.is_set():
            with unit_of_work(self.session_factory) as session:
                task = repository.claim_next(session, worker=self.worker_name)
            if task is None:
                return
            self._spawn(task.id)

    def _spawn(self, task_id: int) -> None:
        self.supervisor.spawn(task_id)

    def _interrupt_orphans(self) -> None:
        """Tasks left ``running`` by a server process of this host that no longer exists become interrupted,
        once no process holds their run folder any more (a live orphan is stopped first)."""
        with unit_of_work(self.session_factory) as session:
            orphans = [(task.id, task.run_dir) for task in
                       repository.running_tasks(session, worker_prefix=self.host_prefix)
                       if not self._owner_alive(task.worker)]
        for task_id, run_dir in orphans:
            stopped = ownership.stop_owner(self.settings.data_dir / run_dir) if run_dir else None
            note = "interrupted: the server that ran this task stopped"
            if stopped is not None:
                note += f" (its process {stopped}, still running, was stopped)"
                log.warning("task %s: stopped orphaned process %s", task_id, stopped)
            self._mark_interrupted(task_id, note=note)

    @staticmethod
    def _owner_alive(worker: str | None) -> bool:
        owner_pid = int(worker.rsplit(":", 1)[1]) if worker else None
        return owner_pid is not None and owner_pid != os.getpid() and _pid_alive(owner_pid)
