"""A worker's own heartbeat: its row in ``workers``, rewritten every ``worker_heartbeat_seconds``.

``GET /api/workers`` lists the rows that beat within the lease timeout; the leases of the tasks a worker runs
are renewed separately, by the supervisor that watches them (``executor.supervisor``).
"""

from __future__ import annotations

import logging
import os
import socket
import time
from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from imagerec import __version__
from imagerec.config import Settings
from imagerec.db import BUSY_ERRORS, is_busy, unit_of_work, utcnow
from imagerec.workers import repository
from imagerec.workers.models import Worker

log = logging.getLogger(__name__)
FORGET_AFTER = timedelta(days=1)  # a silent worker's row is kept this long, for the record, then dropped


class Heartbeat:
    def __init__(self, session_factory: sessionmaker[Session], *, settings: Settings, name: str, kind: str,
                 queues: list[str], slots: int, gpus: list[str] | None = None) -> None:
        self.session_factory = session_factory
        self.every = settings.worker_heartbeat_seconds
        self.name = name
        self._row = dict(name=name, kind=kind, host=socket.gethostname(), pid=os.getpid(), queues=queues,
                         slots=slots, gpus=gpus or [], version=__version__)
        self._beaten_at: float | None = None

    def beat(self) -> None:
        """Write the row when the last beat is older than the interval; a busy database only delays it."""
        if self._beaten_at is not None and time.monotonic() - self._beaten_at < self.every:
            return
        try:
            with unit_of_work(self.session_factory) as session:
                repository.beat(session, worker=Worker(**self._row))
                repository.remove_gone(session, before=utcnow() - FORGET_AFTER)
        except BUSY_ERRORS as error:
            if not is_busy(error):
                raise
            log.warning("database busy; worker heartbeat postponed: %s", error)
            return
        self._beaten_at = time.monotonic()

    def leave(self) -> None:
        try:
            with unit_of_work(self.session_factory) as session:
                repository.remove(session, name=self.name)
        except BUSY_ERRORS:
            log.warning("could not remove worker row %s; it ages out after the lease timeout", self.name)
