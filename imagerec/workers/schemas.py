from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class CeleryView(BaseModel):
    """What the worker itself answered to Celery's inspection (``reachable`` false: no answer within a second)."""

    reachable: bool
    active_messages: list[str] = Field(description="Celery message ids the worker is executing")
    max_concurrency: int | None = None


class WorkerRead(BaseModel):
    name: str = Field(description="Owner prefix of its tasks' `worker` field")
    kind: str = Field(description="local: the API's built-in executor; celery: an `imagerec worker`")
    host: str
    pid: int
    queues: list[str]
    slots: int
    gpus: list[str]
    version: str
    started_at: datetime
    heartbeat_at: datetime
    running_tasks: list[int]
    celery: CeleryView | None = None


class WorkerList(BaseModel):
    executor: str
    lease_seconds: float
    workers: list[WorkerRead]
