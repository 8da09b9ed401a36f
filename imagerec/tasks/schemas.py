from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, computed_field

from imagerec.tasks.models import TaskStatus


class TaskProgress(BaseModel):
    epoch: int | None = Field(description="Epochs completed so far")
    total_epochs: int | None
    percent: float
    eta_seconds: float | None


class TaskRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str
    type: str
    name: str | None
    status: TaskStatus
    cancel_requested: bool
    attempt: int
    params: dict[str, Any]
    epoch: int | None = Field(exclude=True)
    total_epochs: int | None = Field(exclude=True)
    progress_fraction: float = Field(validation_alias="progress", exclude=True)
    eta_seconds: float | None = Field(exclude=True)
    latest_metrics: dict[str, Any] | None
    report: dict[str, Any] | None
    error: str | None
    model_id: int | None = Field(description="The model this task registered, once it succeeded")
    created_at: datetime
    created_by: str | None = Field(None, description="The name of the API key that created it")
    started_at: datetime | None
    finished_at: datetime | None
    queue: str | None = Field(None, description="The Celery queue it was sent to (None: the default queue)")
    worker: str | None = Field(None, description="Who runs (or last ran) it: executor kind, host or node, pid")
    heartbeat_at: datetime | None = Field(None, description="Its worker's last sign of life (the lease)")

    @computed_field
    @property
    def progress(self) -> TaskProgress:
        return TaskProgress(
            epoch=self.epoch,
            total_epochs=self.total_epochs,
            percent=round(100 * self.progress_fraction, 2),
            eta_seconds=self.eta_seconds,
        )


class TaskLogRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    seq: int = Field(validation_alias="id", description="Pass as `after` to get the lines that follow")
    created_at: datetime
    level: str
    message: str


class TaskLogPage(BaseModel):
    task_id: int
    status: TaskStatus
    lines: list[TaskLogRead]
    next_after: int = Field(description="The `after` for the next poll")


class EpochMetrics(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    epoch: int
    values: dict[str, float | None]
