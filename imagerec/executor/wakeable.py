"""The background thread both executors run: one step every ``poll_seconds``, or at once when woken."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class WakeableLoop:
    def __init__(self, step: Callable[[], None], *, poll_seconds: float, name: str) -> None:
        self._step = step
        self._poll_seconds = poll_seconds
        self._name = name
        self._wake = threading.Event()
        self.stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def wake(self) -> None:
        self._wake.set()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        while not self.stopping.is_set():
            try:
                self._step()
            except Exception:  # the loop must survive a database or broker hiccup: the next step tries again
                log.exception("%s: step failed", self._name)
            self._wake.wait(self._poll_seconds)
            self._wake.clear()
