"""What runs inside ``imagerec worker``: the Celery task that runs one imagerec task, and the worker's heartbeat.

Each Celery pool process runs one message at a time (prefork, prefetch 1). For "run task N" it:

1. claims task N (a conditional UPDATE: only a queued task can be claimed, so a duplicated message ends here);
2. takes a free slot of this worker (with ``--gpus``, one GPU each: the child sees only that GPU, so its
   ``device: auto`` is that GPU);
3. runs the task in its own child process, the same child code as the built-in executor, watched by a
   ``Supervisor`` (exit, cancel grace, lease renewal) until the child ends.

The main worker process writes the worker's row every ``worker_heartbeat_seconds`` and sweeps lapsed leases of
every worker. Pool processes die with the main process, and task children with their pool process, so a worker
killed outright leaves no training behind: its tasks' leases lapse and they become ``interrupted``.
"""

from __future__ import annotations

import fcntl
import logging
import multiprocessing
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from celery import Celery, signals
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from imagerec.config import Settings
from imagerec.db import make_engine, make_session_factory, retry_busy, unit_of_work
from imagerec.executor import leases, ownership
from imagerec.executor.celery_app import RUN_TASK, make_celery
from imagerec.executor.supervisor import Supervisor
from imagerec.tasks import repository
from imagerec.workers.heartbeat import Heartbeat

log = logging.getLogger("imagerec.worker")
_STANDARD_MAIN_PROCESS = multiprocessing.process.current_process()  # the worker's, before billiard forks its pool


@dataclass
class WorkerConfig:
    settings: Settings
    name: str  # the Celery node name, e.g. imagerec-1234@gpu-box-1
    queues: list[str]
    slots: int
    gpus: list[str] = field(default_factory=list)

    @property
    def owner_prefix(self) -> str:
        return f"{leases.CELERY_OWNER}{self.name}"


_config: WorkerConfig | None = None
_main_engine: Engine | None = None
_pool_factory: sessionmaker[Session] | None = None


def _factory() -> sessionmaker[Session]:
    """This pool process's own engine (created after the fork; never shared with the main process)."""
    global _pool_factory
    if _pool_factory is None:
        engine = make_engine(_config.settings.sqlalchemy_url, pool_size=2,
                             busy_timeout=_config.settings.db_busy_timeout_seconds)
        _pool_factory = make_session_factory(engine)
    return _pool_factory


@contextmanager
def _slot(config: WorkerConfig) -> Iterator[str | None]:
    """One of this worker's slots, held (an flock) while a task runs: its GPU, or None without ``--gpus``."""
    if not config.gpus:
        yield None
        return
    folder = Path(tempfile.gettempdir()) / f"imagerec-worker-{os.getppid()}"
    folder.mkdir(exist_ok=True)
    while True:
        for gpu in config.gpus:
            fd = os.open(folder / f"gpu-{gpu}.lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            try:
                yield gpu
            finally:
                os.close(fd)
            return
        time.sleep(0.5)  # prefetch 1 and one pool process per GPU: only a dying neighbour still holds one


def run_task(message, task_id: int) -> str:
    """The Celery task: run imagerec task ``task_id`` here, unless another worker already has it."""
    config, factory = _config, _factory()
    owner = f"{config.owner_prefix}:{os.getpid()}"
    with _slot(config) as gpu:
        def take() -> bool:
            with unit_of_work(factory) as session:
                claimed = repository.claim(session, task_id=task_id, worker=owner, message_id=message.request.id)
                if claimed:
                    where = f" (GPU {gpu})" if gpu is not None else ""
                    repository.append_log(session, task_id=task_id, message=f"started on worker {config.name}{where}")
                return claimed

        if not retry_busy(take, what=f"claiming task {task_id}", deadline_seconds=None):
            log.info("task %s is not queued (another worker has it, or it ended): message %s ignored",
                     task_id, message.request.id)
            return "not claimed"
        supervisor = Supervisor(settings=config.settings, session_factory=factory, owner=owner)
        try:
            supervisor.spawn(task_id, gpu=gpu)
        except Exception as error:  # the task never started: say why rather than let its lease lapse
            supervisor.record_start_failure(task_id, error)
            raise
        while supervisor.children:
            time.sleep(config.settings.executor_poll_seconds)
            try:
                supervisor.tick()
            except Exception:  # a database hiccup: the child goes on, the next tick tries again
                log.exception("supervising task %s", task_id)
    return "ran"


def _beat_forever(config: WorkerConfig, stop: threading.Event) -> None:
    global _main_engine
    _main_engine = make_engine(config.settings.sqlalchemy_url, pool_size=2,
                               busy_timeout=config.settings.db_busy_timeout_seconds)
    factory = make_session_factory(_main_engine)
    heartbeat = Heartbeat(factory, settings=config.settings, name=config.owner_prefix, kind="celery",
                          queues=config.queues, slots=config.slots, gpus=config.gpus)
    while not stop.is_set():
        try:
            heartbeat.beat()
            leases.expire(config.settings, factory)
        except Exception:
            log.exception("worker heartbeat")
        stop.wait(min(config.settings.worker_heartbeat_seconds, 5.0))
    heartbeat.leave()


def build_app(config: WorkerConfig) -> Celery:
    global _config
    _config = config
    app = make_celery(config.settings)
    app.task(name=RUN_TASK, bind=True)(run_task)
    stop = threading.Event()
    beating: list[threading.Thread] = []

    @signals.worker_ready.connect(weak=False)
    def _start_heartbeat(**_kwargs) -> None:  # in the main process, once the pool processes exist
        beating.append(threading.Thread(target=_beat_forever, args=(config, stop), daemon=True,
                                        name="imagerec-worker-heartbeat"))
        beating[0].start()

    @signals.worker_process_init.connect(weak=False)
    def _pool_process_start(**_kwargs) -> None:
        if _main_engine is not None:  # a pool process forked later: leave the parent's connections alone
            _main_engine.dispose(close=False)
        ownership.die_with_parent(os.getppid())
        # billiard installs its own (daemonic) process object as multiprocessing's current process, and the
        # standard library then refuses it a child and cannot pickle its authkey for ``spawn``. A pool process
        # must own its task's child, so it gets a plain one back; what "daemonic" would give (the child dies
        # with its pool process) PR_SET_PDEATHSIG gives.
        multiprocessing.process._current_process = _STANDARD_MAIN_PROCESS

    @signals.worker_shutdown.connect(weak=False)
    def _stop_heartbeat(**_kwargs) -> None:
        stop.set()
        for thread in beating:
            thread.join(timeout=10)

    return app
