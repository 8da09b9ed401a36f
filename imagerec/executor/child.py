"""What runs inside a task's child process: set up isolation, then hand over to the task kind's runner.

Background code takes ids and opens its own database session; nothing crosses the process boundary but the
task id and the settings.
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback

from imagerec.config import Settings
from imagerec.db import make_engine, make_session_factory, unit_of_work
from imagerec.tasks import repository
from imagerec.tasks.models import TaskKind, TaskStatus

# The runner of each task kind: "module:function", imported only inside the child (it may import torch).
RUNNERS = {
    TaskKind.training: "imagerec.training.runner:run",
    TaskKind.annotation: "imagerec.prelabel.runner:run",
}


def _redirect_output(log_path) -> None:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    sys.stdout = os.fdopen(1, "w", buffering=1, closefd=False)
    sys.stderr = os.fdopen(2, "w", buffering=1, closefd=False)


def _load_runner(kind: str):
    module_name, function_name = RUNNERS[TaskKind(kind)].split(":")
    return getattr(importlib.import_module(module_name), function_name)


def run_child(task_id: int, settings: Settings) -> None:
    os.setsid()  # own process group: a hard cancel kills dataloader workers too
    engine = make_engine(settings.sqlalchemy_url)
    factory = make_session_factory(engine)
    with unit_of_work(factory) as session:
        task = repository.get(session, task_id)
        kind, run_dir = task.kind, task.run_dir
    _redirect_output(settings.data_dir / run_dir / "worker.log")
    try:
        _load_runner(kind)(task_id=task_id, settings=settings, session_factory=factory)
    except BaseException as error:  # report every failure, including KeyboardInterrupt/SystemExit
        traceback.print_exc()
        message = f"{type(error).__name__}: {error}"
        with unit_of_work(factory) as session:
            if repository.transition(
                session, task_id=task_id, from_=[TaskStatus.running], to=TaskStatus.failed, error=message
            ):
                repository.append_log(session, task_id=task_id, level="error", message=f"failed: {message}")
    finally:
        engine.dispose()
