"""Label Studio's ML-backend protocol, as its server sends it (``label_studio/ml/api_connector.py``).

Request bodies accept unknown keys: Label Studio adds fields over versions (``extra_params``, ``compute_id`` …)
and a backend that refused them would break on the next upgrade. Responses carry exactly what Label Studio
reads (``label_studio/ml/models.py``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

MODEL_CLASS = "imagerec"
# Tasks in one predict call (more: 422). Each is fetched and run in turn, and Label Studio gives the whole call
# 100 s; a call asking for thousands would hold the model for minutes while every other request waits.
MAX_PREDICT_TASKS = 100


class LabelStudioBody(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class SetupRequest(LabelStudioBody):
    """``POST /setup``, sent when a model is connected and when Label Studio refreshes the backend's state."""

    project: str | None = Field(None, description="'<project id>.<created timestamp>'")
    label_config: str | None = Field(None, alias="schema", description="The project's labeling config (XML)")
    hostname: str | None = Field(None, description="Label Studio's own idea of its URL: never fetched from")
    access_token: str | None = Field(None, description="Unused: imagerec uses its own configured token")
    model_version: str | None = None


class SetupResponse(BaseModel):
    model_version: str


class Task(LabelStudioBody):
    id: int | str | None = None
    data: dict[str, Any] = Field(default_factory=dict)


class PredictRequest(LabelStudioBody):
    """``POST /predict``: the tasks to pre-label, one prediction each comes back in the same order."""

    tasks: list[Task] = Field(max_length=MAX_PREDICT_TASKS)
    model_version: str | None = Field(None, description="One of ours (imagerec-model-<id>) picks that model")
    project: str | None = None
    label_config: str | None = None
    params: dict[str, Any] | None = None


class TaskPrediction(BaseModel):
    result: list[dict[str, Any]] = Field(description="Regions in Label Studio's format, percent coordinates")
    score: float | None = None
    model_version: str


class PredictResponse(BaseModel):
    results: list[TaskPrediction]
    model_version: str = Field(description="Also read by older Label Studio versions from the top level")


class Health(BaseModel):
    status: Literal["UP"] = "UP"
    model_class: str = MODEL_CLASS
    version: str


class Versions(BaseModel):
    versions: list[str]


class NotAvailable(BaseModel):
    status: str
    detail: str
