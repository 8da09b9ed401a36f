"""What runs inside a task's child process: set up isolation, then hand over to the task kind's runner.

Background code takes ids and opens its own database session; nothing crosses the process boundary but the
task id, the settings, the executor's pid and the GPU of the worker slot it runs in. Before anything else the
child ties its life to the executor's and takes its run folder's lock (see ``ownership``); a task whose cancel
arrived while it was being started ends here at once, before any model or data is loaded. A failure
is recorded as its one-line cause in ``error``, with the traceback in the task log.
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from pathlib import Path

from imagerec.config import Settings
from imagerec.db import make_engine, make_session_factory, retry_busy, unit_of_work
from imagerec.errors import relative_paths
from imagerec.executor import ownership
from imagerec.tasks import repository
from imagerec.tasks.kinds import KINDS
from imagerec.tasks.models import TaskKind, TaskStatus
from imagerec.tasks.reporter import TaskReporter
from imagerec.text import one_line_cause, plain

LOCK_WAIT_SECONDS = 30.0  # a previous owner that is being killed releases the folder within this
TRACEBACK_MAX_LINES = 60


def _redirect_output(log_path: Path) -> None:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    sys.stdout = os.fdopen(1, "w", buffering=1, closefd=False)
    sys.stderr = os.fdopen(2, "w", buffering=1, closefd=False)


def load_runner(kind: str):
    module_name, function_name = KINDS[TaskKind(kind)].runner.split(":")
    return getattr(importlib.import_module(module_name), function_name)


def _task_facts(factory, task_id: int) -> tuple[str, str, bool]:
    def read() -> tuple[str, str, bool]:
        with unit_of_work(factory) as session:
            task = repository.get(session, task_id)
            return task.kind, task.run_dir, bool(task.cancel_requested)

    return retry_busy(read, what="loading the task")


def _cancel_before_start(reporter: TaskReporter) -> None:
    def write(session) -> None:
        if repository.transition(session, task_id=reporter.task_id, from_=[TaskStatus.running],
                                 to=TaskStatus.cancelled, error=None):
            repository.append_log(session, task_id=reporter.task_id,
                                  message="cancelled before it started: nothing was loaded or trained")

    reporter.finish(write)


def record_failure(reporter: TaskReporter, error: BaseException, settings: Settings) -> None:
    folders = [settings.data_dir, settings.pretrained_dir, *settings.allowed_roots]
    cause = relative_paths(one_line_cause(error), folders=folders)
    trace = plain("".join(traceback.format_exception(error))).rstrip().splitlines()[-TRACEBACK_MAX_LINES:]

    def write(session) -> None:
        if repository.transition(session, task_id=reporter.task_id, from_=[TaskStatus.running],
                                 to=TaskStatus.failed, error=cause):
            repository.append_log(session, task_id=reporter.task_id, level="error",
                                  message=relative_paths("traceback:\n" + "\n".join(trace), folders=folders))
            repository.append_log(session, task_id=reporter.task_id, level="error", message=f"failed: {cause}")

    reporter.finish(write, what="the failure")


def run_child(task_id: int, settings: Settings, parent_pid: int, gpu: str | None = None) -> None:
    ownership.die_with_parent(parent_pid)
    if gpu is not None:  # before anything initialises CUDA: the slot's GPU is this child's only one ("auto")
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu
    os.setsid()  # own process group: a hard cancel kills dataloader workers too
    engine = make_engine(settings.sqlalchemy_url, pool_size=2, busy_timeout=settings.db_busy_timeout_seconds)
    factory = make_session_factory(engine)
    reporter = TaskReporter(task_id=task_id, session_factory=factory)
    kind, run_dir, cancelled = _task_facts(factory, task_id)
    try:  # the lock is held until this process (and every process it forks) has exited
        _lock = ownership.acquire(settings.data_dir / run_dir, wait_seconds=LOCK_WAIT_SECONDS)
    except ownership.RunFolderBusy as error:  # touch nothing in the folder: it is someone else's
        record_failure(reporter, error, settings)
        return
    _redirect_output(settings.data_dir / run_dir / "worker.log")
    try:
        if cancelled:
            _cancel_before_start(reporter)
            return
        load_runner(kind)(task_id=task_id, settings=settings, session_factory=factory)
    except BaseException as error:  # report every failure, including KeyboardInterrupt/SystemExit
        traceback.print_exc()
        record_failure(reporter, error, settings)
    finally:
        engine.dispose()
