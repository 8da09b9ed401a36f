from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class LineageRecord(BaseModel):
    """A dataset or model that a model came from, as recorded; ``deleted`` once its files are gone."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    task: str
    class_names: list[str]
    deleted: bool


class DatasetLineage(LineageRecord):
    version: int = Field(description="The dataset's version: the exact data the model read")


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
    dataset: DatasetLineage | None = Field(description="What it was trained on; kept after that dataset is deleted.")
    parent: LineageRecord | None = Field(description="What it was trained from; kept after that model is deleted.")
    created_at: datetime
    created_by: str | None = Field(None, description="The name of the API key that created it")
    evaluation_id: int | None = Field(None, description="Its training's final validation, as an evaluation")


class PromotedModel(ModelRead):
    promotion: dict[str, Any] | None = Field(None, description="The guard's verdict: the comparison with the "
                                             "previous default, and whether the promotion was forced")


class ModelDeleted(BaseModel):
    """The answer to a delete: the model is gone from lists and lookups, its record stays as lineage."""

    id: int
    kind: Literal["model"] = "model"
    deleted: Literal[True] = True
    notes: list[str] = Field(description="What the delete touched: defaults, models trained from it.")
