from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AliasPath, BaseModel, ConfigDict, Field, StringConstraints

from imagerec.fields import RequestModel
from imagerec.vision import VisionTask

DatasetName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class DatasetImport(RequestModel):
    """Register a dataset that stays in a folder on the server (inside an allowed root)."""

    name: DatasetName
    task: VisionTask
    path: Annotated[str, Field(min_length=1, max_length=4096, description="Folder on the server.")]


class SplitCounts(BaseModel):
    images: int
    instances: int  # labelled objects; for classify, one per image
    backgrounds: int  # images without any object


class DatasetSplits(BaseModel):
    train: SplitCounts
    val: SplitCounts


class DatasetRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    task: VisionTask
    class_names: list[str]
    kpt_shape: list[int] | None
    flip_idx: list[int] | None
    splits: DatasetSplits = Field(validation_alias=AliasPath("summary", "splits"))
    warnings: list[str] = Field(validation_alias=AliasPath("summary", "warnings"))
    source: Literal["upload", "path", "prelabel"]
    source_path: str | None
    created_at: datetime
    created_by: str | None = Field(None, description="The name of the API key that created it")


class DatasetDeleted(BaseModel):
    """The answer to a delete: the dataset is gone from lists and lookups, its record stays as lineage."""

    id: int
    kind: Literal["dataset"] = "dataset"
    deleted: Literal[True] = True
    notes: list[str] = Field(description="What the delete touched: the models trained on it.")
