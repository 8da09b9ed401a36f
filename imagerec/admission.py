"""Admission control: a bounded queue in front of the API, so a burst of requests waits instead of failing.

At most ``max_concurrent`` requests are handled at once (fewer than the worker threads and database
connections, so a handled request never waits for either); up to ``max_waiting`` more wait in arrival order for
at most ``max_wait_seconds``. Past either bound the answer is 503 with ``Retry-After``: the service is saturated,
which is not the caller's fault and not a server error. A request holds its slot until its response starts, so
a log stream or a file download does not hold one while it is being sent. ``/health`` and the API docs are
never queued: a monitor must see a busy server as up.
"""

from __future__ import annotations

import asyncio
import math

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

QUEUED_PREFIXES = ("/api/", "/labelstudio")


class Admission:
    def __init__(self, app: ASGIApp, *, max_concurrent: int, max_waiting: int, max_wait_seconds: float) -> None:
        self.app = app
        self.max_concurrent = max_concurrent
        self.max_waiting = max_waiting
        self.max_wait_seconds = max_wait_seconds
        self._slots: asyncio.Semaphore | None = None  # made on first use, inside the server's event loop
        self.waiting = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(QUEUED_PREFIXES):
            await self.app(scope, receive, send)
            return
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.max_concurrent)
        if not await self._admit(self._slots):
            await self._saturated(scope, receive, send)
            return
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self._slots.release()

        async def send_releasing(message: Message) -> None:
            if message["type"] == "http.response.start":
                release()
            await send(message)

        try:
            await self.app(scope, receive, send_releasing)
        finally:
            release()

    async def _admit(self, slots: asyncio.Semaphore) -> bool:
        if not slots.locked():
            await slots.acquire()
            return True
        if self.waiting >= self.max_waiting:
            return False
        self.waiting += 1
        try:
            await asyncio.wait_for(slots.acquire(), timeout=self.max_wait_seconds)
            return True
        except TimeoutError:
            return False
        finally:
            self.waiting -= 1

    async def _saturated(self, scope: Scope, receive: Receive, send: Send) -> None:
        retry_after = max(1, math.ceil(self.max_wait_seconds / 4))
        response = JSONResponse(
            {"detail": "the server is saturated: every request slot and waiting place is taken; retry shortly"},
            status_code=503, headers={"Retry-After": str(retry_after)},
        )
        await response(scope, receive, send)
