"""Bounded concurrency for inference: a few run, a few wait, the rest are told at once to come back later.

A queue without a bound turns a burst into minutes of latency for everyone and, at worst, into memory
exhaustion; a quick 429 with ``Retry-After`` lets a client back off instead. The limiter lives on the event
loop (built in ``lifespan``); waiting costs no thread.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio

from imagerec.errors import ImagerecError


class Overloaded(ImagerecError):
    """All inference slots are busy and the waiting room is full (429, with ``Retry-After``)."""

    status_code = 429

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message, details=None)
        self.retry_after = retry_after


class ConcurrencyLimiter:
    def __init__(self, *, max_running: int, max_waiting: int, retry_after_seconds: int = 1) -> None:
        self.max_running = max_running
        self.max_waiting = max_waiting
        self.retry_after_seconds = retry_after_seconds
        self._slots = anyio.Semaphore(max_running)
        self.waiting = 0
        self.rejected = 0  # for tests and metrics

    @property
    def running(self) -> int:
        return self.max_running - self._slots.value

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one inference slot for the block; raises ``Overloaded`` at once when none can be had."""
        try:
            self._slots.acquire_nowait()  # a freed slot goes straight to a waiter, so this never jumps the queue
        except anyio.WouldBlock:
            await self._wait_for_slot()
        try:
            yield
        finally:
            self._slots.release()

    async def _wait_for_slot(self) -> None:
        if self.waiting >= self.max_waiting:
            self.rejected += 1
            raise Overloaded(
                f"the annotation service is busy ({self.running} running, {self.waiting} waiting); "
                f"retry in {self.retry_after_seconds} s",
                retry_after=self.retry_after_seconds,
            )
        self.waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self.waiting -= 1
