"""Server-Sent Events for a task's log. Each poll opens its own short session (never the request's)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from imagerec.tasks import repository
from imagerec.tasks.models import ACTIVE, TaskStatus
from imagerec.tasks.schemas import TaskLogRead

POLL_SECONDS = 0.5
KEEPALIVE_SECONDS = 15.0


def _read(factory, task_id: int, after: int) -> tuple[list[TaskLogRead], TaskStatus | None]:
    with factory() as session:
        lines = [TaskLogRead.model_validate(row) for row in repository.logs_after(
            session, task_id=task_id, after=after, limit=500)]
        task = repository.get(session, task_id)
        return lines, (TaskStatus(task.status) if task else None)


def _event(name: str, data: dict, event_id: int | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {name}\ndata: {json.dumps(data, default=str)}\n\n"


async def follow_logs(request: Request, *, task_id: int, after: int) -> AsyncIterator[str]:
    factory = request.app.state.session_factory
    idle = 0.0
    while not await request.is_disconnected():
        lines, status = await run_in_threadpool(_read, factory, task_id, after)
        for line in lines:
            after = line.seq
            yield _event("log", line.model_dump(mode="json"), line.seq)
        if lines:
            idle = 0.0
            continue
        if status is None or status not in ACTIVE:
            yield _event("end", {"task_id": task_id, "status": status})
            return
        await asyncio.sleep(POLL_SECONDS)
        idle += POLL_SECONDS
        if idle >= KEEPALIVE_SECONDS:
            idle = 0.0
            yield ": keep-alive\n\n"
