"""Watching task children: what the built-in executor's thread and a Celery worker's task both do.

A ``Supervisor`` spawns each claimed task in its own child process (``spawn``: a fresh interpreter, CUDA-safe;
its own process group, so a kill takes its dataloader workers too), and on every ``tick``:

- records how a child that died without reporting ended (``failed``, or ``cancelled`` when it was killed after
  a cancel);
- kills a child whose task was flagged for cancel and has not stopped within the grace period;
- renews the lease of every task its owner runs (a heartbeat at most every ``heartbeat_seconds``), and kills a
  child whose task another worker now owns or whose lease lapsed (it was declared ``interrupted``): the task is
  someone else's to resume, and one run folder never has two writers.

Its writes go through ``retry_busy``: a busy database delays them, it never loses a child's exit.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from dataclasses import dataclass, field

from sqlalchemy.orm import Session, sessionmaker

from imagerec.config import Settings
from imagerec.db import retry_busy, unit_of_work
from imagerec.executor.child import run_child
from imagerec.tasks import repository
from imagerec.tasks.models import TaskStatus


@dataclass
class Child:
    task_id: int
    process: multiprocessing.process.BaseProcess
    kill_at: float | None = None  # monotonic deadline once a cancel was seen
    killed: bool = field(default=False)
    lost: bool = field(default=False)  # killed because the task is no longer this owner's


def describe_exit(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        name = signal.Signals(-exitcode).name if -exitcode in signal.valid_signals() else str(-exitcode)
        return f"worker process was killed by {name}"
    return f"worker process exited with code {exitcode} without reporting a result"


class Supervisor:
    def __init__(self, *, settings: Settings, session_factory: sessionmaker[Session], owner: str) -> None:
        self.settings = settings
        self.session_factory = session_factory
        self.owner = owner  # the ``worker`` its tasks carry
        self.children: dict[int, Child] = {}
        self._context = multiprocessing.get_context("spawn")
        self._renewed_at = 0.0

    def spawn(self, task_id: int, *, gpu: str | None = None) -> None:
        process = self._context.Process(target=run_child, args=(task_id, self.settings, os.getpid(), gpu),
                                        name=f"imagerec-task-{task_id}")
        process.start()
        self.children[task_id] = Child(task_id=task_id, process=process)

        def record_pid() -> None:
            with unit_of_work(self.session_factory) as session:
                repository.update_running(session, task_id=task_id, worker_pid=process.pid)

        retry_busy(record_pid, what=f"recording task {task_id}'s pid")

    def record_start_failure(self, task_id: int, error: BaseException) -> None:
        def write() -> None:
            with unit_of_work(self.session_factory) as session:
                cause = f"its process could not be started: {type(error).__name__}: {error}"
                if repository.transition(session, task_id=task_id, from_=[TaskStatus.running],
                                         to=TaskStatus.failed, error=cause):
                    repository.append_log(session, task_id=task_id, level="error", message=cause)

        retry_busy(write, what=f"recording that task {task_id} did not start")

    def tick(self) -> None:
        self.reap()
        self.enforce_cancels()
        self.renew_leases()

    def reap(self) -> None:
        for child in [c for c in self.children.values() if not c.process.is_alive()]:
            child.process.join()
            # raises if the database stays out of reach: the next tick tries again
            retry_busy(lambda child=child: self._record_exit(child), what=f"recording how task {child.task_id} ended")
            del self.children[child.task_id]

    def _record_exit(self, child: Child) -> None:
        if child.lost:
            return  # the task is another owner's now: what it says stands
        with unit_of_work(self.session_factory) as session:
            if child.killed:
                error = "did not stop within the grace period after cancel; its process was killed"
                moved = repository.transition(session, task_id=child.task_id, from_=[TaskStatus.running],
                                              to=TaskStatus.cancelled, error=error)
            else:
                moved = repository.transition(session, task_id=child.task_id, from_=[TaskStatus.running],
                                              to=TaskStatus.failed, error=describe_exit(child.process.exitcode))
            if moved:
                repository.append_log(
                    session, task_id=child.task_id, level="error",
                    message="task ended: " + ("killed after cancel" if child.killed
                                              else describe_exit(child.process.exitcode)),
                )

    def enforce_cancels(self) -> None:
        if not self.children:
            return
        with unit_of_work(self.session_factory) as session:
            flagged = repository.cancel_requested_ids(session, task_ids=self.children)
        now = time.monotonic()
        for task_id in flagged:
            child = self.children[task_id]
            if child.kill_at is None:
                child.kill_at = now + self.settings.cancel_grace_seconds
            elif now >= child.kill_at and not child.killed:
                self.kill(child)

    def renew_leases(self) -> None:
        if not self.children or time.monotonic() - self._renewed_at < self.settings.worker_heartbeat_seconds:
            return
        with unit_of_work(self.session_factory) as session:
            repository.renew_leases(session, worker=self.owner)
            owners = repository.owners(session, task_ids=self.children)
        self._renewed_at = time.monotonic()
        for task_id, (status, worker) in owners.items():
            lapsed = status in (TaskStatus.queued, TaskStatus.interrupted)  # declared gone, maybe queued again
            if lapsed or (status == TaskStatus.running and worker != self.owner):
                self.children[task_id].lost = True
                self.kill(self.children[task_id])

    def kill(self, child: Child) -> None:
        child.killed = True
        try:
            os.killpg(child.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            child.process.kill()

    def kill_all(self, *, wait_seconds: float = 10.0) -> list[int]:
        """Kill every child and wait for it; the task ids they held."""
        held = list(self.children)
        for child in self.children.values():
            self.kill(child)
            child.process.join(timeout=wait_seconds)
        self.children.clear()
        return held
