"""A task child's channel to the API: short transactions on the task's own rows."""

from __future__ import annotations

import logging
import re
import time

from sqlalchemy.orm import Session, sessionmaker

from imagerec.db import unit_of_work, utcnow
from imagerec.tasks import repository

CANCEL_CHECK_SECONDS = 0.5
PROGRESS_SECONDS = 1.0


class TaskReporter:
    def __init__(self, *, task_id: int, session_factory: sessionmaker[Session]) -> None:
        self.task_id = task_id
        self.session_factory = session_factory
        self._cancel_seen = False
        self._cancel_checked_at = 0.0
        self._progress_at = 0.0

    def log(self, message: str, *, level: str = "info") -> None:
        with unit_of_work(self.session_factory) as session:
            repository.append_log(session, task_id=self.task_id, message=message, level=level)

    def cancel_requested(self) -> bool:
        """Polls the flag at most every CANCEL_CHECK_SECONDS; once seen, stays seen."""
        now = time.monotonic()
        if not self._cancel_seen and now - self._cancel_checked_at >= CANCEL_CHECK_SECONDS:
            self._cancel_checked_at = now
            with unit_of_work(self.session_factory) as session:
                self._cancel_seen = repository.is_cancel_requested(session, task_id=self.task_id)
        return self._cancel_seen

    def progress(self, *, fraction: float, eta_seconds: float | None, epoch: int | None = None,
                 total_epochs: int | None = None, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._progress_at < PROGRESS_SECONDS:
            return
        self._progress_at = now
        with unit_of_work(self.session_factory) as session:
            repository.update_running(
                session, task_id=self.task_id, epoch=epoch, total_epochs=total_epochs,
                progress=min(max(fraction, 0.0), 1.0), eta_seconds=eta_seconds, heartbeat_at=utcnow(),
            )

    def epoch_metrics(self, *, epoch: int, values: dict, lines: list[str]) -> None:
        with unit_of_work(self.session_factory) as session:
            repository.put_metric(session, task_id=self.task_id, epoch=epoch, values=values)
            repository.update_running(session, task_id=self.task_id, latest_metrics=values)
            for line in lines:
                repository.append_log(session, task_id=self.task_id, message=line)


class WarningForwarder(logging.Handler):
    """Ultralytics' own warnings (ignored arguments, missing labels …) go to the task log, without colour codes."""

    ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
    LIMIT = 100

    def __init__(self, reporter: TaskReporter, *, level: int = logging.WARNING) -> None:
        super().__init__(level=level)  # a lower level also forwards info lines (the training strategies' own)
        self.reporter = reporter
        self.forwarded = 0

    def emit(self, record: logging.LogRecord) -> None:
        if self.forwarded >= self.LIMIT:
            return
        self.forwarded += 1
        message = self.ANSI.sub("", record.getMessage()).strip()
        try:
            self.reporter.log(message, level="warning" if record.levelno >= logging.WARNING else "info")
        except Exception:  # a log line must never break training
            self.handleError(record)
