"""The built-in executor: a thread in the API process that claims queued tasks from the database and runs
each in its own child process (``spawn``: a fresh interpreter, CUDA-safe; its own process group so a kill
takes its dataloader workers too). The child reports through the database; this thread only watches exits
and enforces cancels.

Ownership (see ``ownership``): children die with this process, and at start the executor stops any process
still holding the run folder of a task left ``running`` by a server that is gone, before it marks the task
``interrupted`` — so a restarted server never lets two processes work on one task. Its own writes go through
``retry_busy``: a busy database delays them, it never loses a child's exit."""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
from dataclasses import dataclass, field

from sqlalchemy.orm import Session, sessionmaker

from imagerec.config import Settings
from imagerec.db import retry_busy, unit_of_work
from imagerec.executor import ownership
from imagerec.executor.child import run_child
from imagerec.tasks import repository
from imagerec.tasks.models import TaskStatus

INTERRUPTED = "the server stopped while the task ran; resume it to continue"

log = logging.getLogger(__name__)


@dataclass
class _Child:
    task_id: int
    process: multiprocessing.process.BaseProcess
    kill_at: float | None = None  # monotonic deadline once a cancel was seen
    killed: bool = field(default=False)


def _describe_exit(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        name = signal.Signals(-exitcode).name if -exitcode in signal.valid_signals() else str(-exitcode)
        return f"worker process was killed by {name}"
    return f"worker process exited with code {exitcode} without reporting a result"


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
        self.children: dict[int, _Child] = {}
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._context = multiprocessing.get_context("spawn")

    # -- interface ---------------------------------------------------------------------------------------------
    def start(self) -> None:
        self._interrupt_orphans()
        self._thread = threading.Thread(target=self._loop, name="imagerec-executor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        for child in list(self.children.values()):
            self._kill(child)
            child.process.join(timeout=10)
            self._mark_interrupted(child.task_id, note="interrupted: the server stopped while the task ran")
        self.children.clear()

    def _mark_interrupted(self, task_id: int, *, note: str) -> None:
        def write() -> None:
            with unit_of_work(self.session_factory) as session:
                if repository.transition(session, task_id=task_id, from_=[TaskStatus.running],
                                         to=TaskStatus.interrupted, error=INTERRUPTED):
                    repository.append_log(session, task_id=task_id, level="warning",
                                          message=f"{note}; resume it to continue")

        retry_busy(write, what=f"interrupting task {task_id}")

    def submit(self, task_id: int) -> None:
        self._wake.set()

    def cancel(self, task_id: int) -> None:
        self._wake.set()

    def state(self) -> dict:
        alive = self._thread is not None and self._thread.is_alive()
        return {
            "kind": self.kind,
            "running": alive,
            "concurrency": self.settings.executor_concurrency,
            "active_tasks": sorted(self.children),
        }

    # -- loop --------------------------------------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                self._reap()
                self._enforce_cancels()
                self._claim()
            except Exception:  # the loop must survive a database hiccup
                log.exception("executor loop error")
            self._wake.wait(self.settings.executor_poll_seconds)
            self._wake.clear()

    def _claim(self) -> None:
        while len(self.children) < self.settings.executor_concurrency and not self._stopping.is_set():
            with unit_of_work(self.session_factory) as session:
                task = repository.claim_next(session, worker=self.worker_name)
            if task is None:
                return
            self._spawn(task.id)

    def _spawn(self, task_id: int) -> None:
        process = self._context.Process(
            target=run_child, args=(task_id, self.settings, os.getpid()), name=f"imagerec-task-{task_id}"
        )
        process.start()
        self.children[task_id] = _Child(task_id=task_id, process=process)

        def record_pid() -> None:
            with unit_of_work(self.session_factory) as session:
                repository.update_running(session, task_id=task_id, worker_pid=process.pid)

        retry_busy(record_pid, what=f"recording task {task_id}'s pid")

    def _reap(self) -> None:
        for child in [c for c in self.children.values() if not c.process.is_alive()]:
            child.process.join()
            self._settle_exit(child)  # raises if the database stays out of reach: the next loop tries again
            del self.children[child.task_id]

    def _settle_exit(self, child: _Child) -> None:
        """A child that ended without moving its task out of ``running`` died: record why."""
        retry_busy(lambda: self._record_exit(child), what=f"recording how task {child.task_id} ended")

    def _record_exit(self, child: _Child) -> None:
        with unit_of_work(self.session_factory) as session:
            if child.killed:
                moved = repository.transition(
                    session, task_id=child.task_id, from_=[TaskStatus.running], to=TaskStatus.cancelled,
                    error="did not stop within the grace period after cancel; its process was killed",
                )
            else:
                moved = repository.transition(
                    session, task_id=child.task_id, from_=[TaskStatus.running], to=TaskStatus.failed,
                    error=_describe_exit(child.process.exitcode),
                )
            if moved:
                repository.append_log(
                    session, task_id=child.task_id, level="error",
                    message="task ended: " + ("killed after cancel" if child.killed
                                              else _describe_exit(child.process.exitcode)),
                )

    def _enforce_cancels(self) -> None:
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
                self._kill(child)

    def _kill(self, child: _Child) -> None:
        child.killed = True
        try:
            os.killpg(child.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            child.process.kill()

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
