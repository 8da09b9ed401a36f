"""``imagerec worker``: a Celery worker that runs imagerec tasks, on this or any machine.

It refuses to start, saying why, when what it would work on is not the deployment's: no broker, a database it
cannot share (SQLite), a database at another schema revision than this code, or a data dir whose marker is not
the database's (``workers.deployment``).
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import sys

from imagerec.config import QUEUE_PATTERN, Settings

QUEUE_NAME = re.compile(QUEUE_PATTERN)


class CannotStart(RuntimeError):
    pass


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--queue", action="append", dest="queues", metavar="NAME",
                        help="queue to take tasks from; repeat (or comma-separate) for several "
                             "(default: the default_queue setting)")
    parser.add_argument("--concurrency", type=int, help="tasks run at once (default 1; with --gpus, one per GPU)")
    parser.add_argument("--gpus", help="GPU indices, e.g. 0,1: one slot per GPU, each task sees only its own")
    parser.add_argument("--name", help="Celery node name (default imagerec-<pid>@<host>)")
    parser.add_argument("--loglevel", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])


def _slots(args: argparse.Namespace) -> tuple[int, list[str]]:
    gpus = [gpu.strip() for gpu in (args.gpus or "").split(",") if gpu.strip()]
    if any(not gpu.isdigit() for gpu in gpus) or len(set(gpus)) != len(gpus):
        raise CannotStart(f"--gpus takes distinct GPU indices such as 0,1 (got {args.gpus!r})")
    if gpus and args.concurrency not in (None, len(gpus)):
        raise CannotStart(f"--gpus {args.gpus} gives {len(gpus)} slots (one task per GPU); "
                          f"--concurrency {args.concurrency} contradicts it")
    concurrency = len(gpus) or (1 if args.concurrency is None else args.concurrency)
    if not 1 <= concurrency <= 64:
        raise CannotStart("--concurrency must be between 1 and 64")
    return concurrency, gpus


def _queues(args: argparse.Namespace, settings: Settings) -> list[str]:
    queues = [q.strip() for value in (args.queues or [settings.default_queue]) for q in value.split(",") if q.strip()]
    bad = [queue for queue in queues if not QUEUE_NAME.fullmatch(queue)]
    if bad or not queues:
        raise CannotStart(f"queue names are letters, digits and _.:- (up to 64, not starting with a sign): {bad}")
    return queues


def _check_database(settings: Settings) -> None:
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from imagerec.db import make_engine, make_session_factory
    from imagerec.migrations import alembic_config
    from imagerec.workers import deployment

    if settings.database_kind == "sqlite":
        raise CannotStart("a worker needs the deployment's shared PostgreSQL database "
                          "(IMAGEREC_DATABASE_URL=postgresql://…); SQLite cannot be shared between machines")
    engine = make_engine(settings.sqlalchemy_url, pool_size=1)
    try:
        with engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_revision()
        head = ScriptDirectory.from_config(alembic_config(settings.sqlalchemy_url)).get_current_head()
        if current != head:
            raise CannotStart(f"the database is at schema revision {current}, this worker's code expects {head}: "
                              f"start the API of this version first (it migrates), or run the matching version")
        deployment.check(settings, make_session_factory(engine))
    except deployment.DataDirMismatch as error:
        raise CannotStart(str(error)) from None
    finally:
        engine.dispose()


def run(args: argparse.Namespace) -> int:
    try:
        settings = Settings()
        if not settings.broker_url:
            raise CannotStart("no broker: set IMAGEREC_BROKER_URL (e.g. redis://host:6379/0)")
        concurrency, gpus = _slots(args)
        queues = _queues(args, settings)
        _check_database(settings)
    except CannotStart as error:
        print(f"imagerec worker: cannot start: {error}", file=sys.stderr)
        return 2
    from imagerec.executor.celery_worker import WorkerConfig, build_app

    name = args.name or f"imagerec-{os.getpid()}@{socket.gethostname()}"
    app = build_app(WorkerConfig(settings=settings, name=name, queues=queues, slots=concurrency, gpus=gpus))
    app.worker_main(["worker", "--pool=prefork", f"--concurrency={concurrency}", f"--queues={','.join(queues)}",
                     f"--hostname={name}", f"--loglevel={args.loglevel}", "--without-gossip", "--without-mingle"])
    return 0
