"""Batch pre-labelling requests: a model labels a dataset (or a server folder of images) into a new dataset."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field, model_validator

from imagerec.annotation.schemas import AnnotateParams
from imagerec.fields import Id, QueueName


class PrelabelMode(StrEnum):
    fill_missing = "fill-missing"  # only images without human labels get the model's labels
    overwrite = "overwrite"  # every image gets the model's labels (the source keeps its own)


class PrelabelRequest(AnnotateParams):
    model_id: Id | None = Field(None, description="Default: the default model of the dataset's task")
    dataset_id: Id | None = Field(None, description="A registered dataset to pre-label")
    path: str | None = Field(None, min_length=1, max_length=4096,
                             description="Or a folder of images under an allowed root")
    mode: PrelabelMode = PrelabelMode.fill_missing
    name: str | None = Field(None, min_length=1, max_length=200, description="Name of the dataset it creates")
    queue: QueueName | None = None

    @model_validator(mode="after")
    def _one_source(self) -> PrelabelRequest:
        if (self.dataset_id is None) == (self.path is None):
            raise ValueError("give exactly one source: dataset_id or path")
        if self.path is not None and self.model_id is None:
            raise ValueError("model_id is required when the source is a folder")
        return self
