"""A task child's channel to the API: short transactions on the task's own rows, that never kill the task.

The database may be busy (a burst of API writes, another child) or briefly out of reach. Work must go on
regardless, so what the child writes is sorted by how much it matters:

- log lines and per-epoch metrics are kept in order in memory when a write fails and go out with the next
  write that succeeds (at most ``MAX_PENDING_LINES`` lines are held; older ones are dropped and the log says
  how many);
- progress is dropped when it cannot be written (the next update replaces it anyway);
- the cancel flag keeps its last known value;
- the end state (``finish``) is retried with backoff until it lands, for up to ``FINAL_DEADLINE_SECONDS``.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.orm import Session, sessionmaker

from imagerec.db import BUSY_ERRORS, is_busy, retry_busy, unit_of_work, utcnow
from imagerec.tasks import repository
from imagerec.text import plain

log = logging.getLogger(__name__)
T = TypeVar("T")

CANCEL_CHECK_SECONDS = 0.5
PROGRESS_SECONDS = 1.0
MAX_PENDING_LINES = 10_000
FINAL_DEADLINE_SECONDS = 3600.0  # then the child gives up; its checkpoint stays and the task can be resumed


class TaskReporter:
    def __init__(self, *, task_id: int, session_factory: sessionmaker[Session]) -> None:
        self.task_id = task_id
        self.session_factory = session_factory
        self._cancel_seen = False
        self._cancel_checked_at = 0.0
        self._progress_at = 0.0
        self._pending_lines: deque[tuple[str, str]] = deque()
        self._pending_metrics: dict[int, dict] = {}
        self._dropped_lines = 0

    # -- writes that may wait ----------------------------------------------------------------------------------
    def _try(self, work: Callable[[Session], T], *, what: str) -> tuple[bool, T | None]:
        """One transaction (SQLite's busy timeout already waits for the lock); False when the database is busy."""
        try:
            with unit_of_work(self.session_factory) as session:
                return True, work(session)
        except BUSY_ERRORS as error:
            if not is_busy(error):
                raise
            log.warning("database busy, %s postponed: %s", what, error)
            return False, None

    def _flush_pending(self, session: Session) -> None:
        if self._dropped_lines:
            repository.append_log(session, task_id=self.task_id, level="warning",
                                  message=f"{self._dropped_lines} log lines were dropped while the database was busy")
        for epoch, values in self._pending_metrics.items():
            repository.put_metric(session, task_id=self.task_id, epoch=epoch, values=values)
        for message, level in self._pending_lines:
            repository.append_log(session, task_id=self.task_id, message=message, level=level)

    def _write_with_pending(self, work: Callable[[Session], None] | None, *, what: str) -> bool:
        def everything(session: Session) -> None:
            self._flush_pending(session)
            if work is not None:
                work(session)

        written, _ = self._try(everything, what=what)
        if written:
            self._pending_lines.clear()
            self._pending_metrics.clear()
            self._dropped_lines = 0
        return written

    def _hold_line(self, message: str, level: str) -> None:
        if len(self._pending_lines) >= MAX_PENDING_LINES:
            self._pending_lines.popleft()
            self._dropped_lines += 1
        self._pending_lines.append((plain(message), level))

    def log(self, message: str, *, level: str = "info") -> None:
        self._hold_line(message, level)
        self._write_with_pending(None, what="a log line")

    def epoch_metrics(self, *, epoch: int, values: dict, lines: list[str]) -> None:
        self._pending_metrics[epoch] = values
        for line in lines:
            self._hold_line(line, "info")
        self._write_with_pending(
            lambda session: repository.update_running(session, task_id=self.task_id, latest_metrics=values),
            what=f"epoch {epoch} metrics",
        )

    def progress(self, *, fraction: float, eta_seconds: float | None, epoch: int | None = None,
                 total_epochs: int | None = None, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._progress_at < PROGRESS_SECONDS:
            return
        self._progress_at = now

        def write(session: Session) -> None:
            repository.update_running(
                session, task_id=self.task_id, epoch=epoch, total_epochs=total_epochs,
                progress=min(max(fraction, 0.0), 1.0), eta_seconds=eta_seconds, heartbeat_at=utcnow(),
            )

        self._write_with_pending(write, what="progress")

    def merge_report(self, values: dict) -> None:
        """Add keys to the task's report while it runs (e.g. the optimizer really used); skipped when busy."""
        self._write_with_pending(
            lambda session: repository.merge_report(session, task_id=self.task_id, values=values),
            what="the report",
        )

    # -- reads -------------------------------------------------------------------------------------------------
    def cancel_requested(self) -> bool:
        """Polls the flag at most every CANCEL_CHECK_SECONDS; once seen, stays seen; a busy database keeps the
        last known answer."""
        now = time.monotonic()
        if not self._cancel_seen and now - self._cancel_checked_at >= CANCEL_CHECK_SECONDS:
            self._cancel_checked_at = now
            read, flagged = self._try(
                lambda session: repository.is_cancel_requested(session, task_id=self.task_id), what="cancel check")
            self._cancel_seen = bool(flagged) if read else self._cancel_seen
        return self._cancel_seen

    # -- the end -----------------------------------------------------------------------------------------------
    def finish(self, work: Callable[[Session], T], *, what: str = "the task's end state") -> T:
        """Write the end state (and whatever log lines are pending) in one transaction, retried until it lands."""

        def attempt() -> T:
            with unit_of_work(self.session_factory) as session:
                self._flush_pending(session)
                result = work(session)
            self._pending_lines.clear()
            self._pending_metrics.clear()
            return result

        return retry_busy(attempt, what=what, deadline_seconds=FINAL_DEADLINE_SECONDS)

    def end(self, *, to: str, message: str, error: str | None = None) -> None:
        """Move the running task to ``to`` with its last log line (an error line when ``error`` is given)."""

        def write(session: Session) -> None:
            values = {"progress": 1.0} if to == "succeeded" else {}
            if repository.transition(session, task_id=self.task_id, from_=["running"], to=to, error=error,
                                     **values):
                repository.append_log(session, task_id=self.task_id, message=message,
                                      level="error" if error else "info")

        self.finish(write)


class WarningForwarder(logging.Handler):
    """Ultralytics' own warnings (ignored arguments, missing labels …) go to the task log, without colour codes."""

    LIMIT = 100

    def __init__(self, reporter: TaskReporter, *, level: int = logging.WARNING) -> None:
        super().__init__(level=level)  # a lower level also forwards info lines (the training strategies' own)
        self.reporter = reporter
        self.forwarded = 0

    def emit(self, record: logging.LogRecord) -> None:
        if self.forwarded >= self.LIMIT:
            return
        self.forwarded += 1
        message = plain(record.getMessage()).strip()
        try:
            self.reporter.log(message, level="warning" if record.levelno >= logging.WARNING else "info")
        except Exception:  # a log line must never break training
            self.handleError(record)
