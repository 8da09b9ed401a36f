from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


class ModelRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    task: str
    architecture: str
    class_names: list[str]
    imgsz: int
    metrics: dict[str, Any]
    is_default: bool
    training_mode: str | None
    info: dict[str, Any]
    dataset_id: int | None
    training_task_id: int | None
    parent_id: int | None
    created_at: datetime
