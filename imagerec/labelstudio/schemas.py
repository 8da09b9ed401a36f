"""Label Studio's ML-backend protocol, as its server sends it (``label_studio/ml/api_connector.py``).

Request bodies accept unknown keys: Label Studio adds fields over versions (``extra_params``, ``compute_id`` …)
and a backend that refused them would break on the next upgrade. Responses carry exactly what Label Studio
reads (``label_studio/ml/models.py``).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from imagerec.fields import RequestModel

MODEL_CLASS = "imagerec"
# Tasks in one predict call (more: 422). Each is fetched and run in turn, and Label Studio gives the whole call
# 100 s; a call asking for thousands would hold the model for minutes while every other request waits.
MAX_PREDICT_TASKS = 100
MAX_EXTRA_PARAMS_CHARS = 10_000


class LabelStudioBody(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class SetupRequest(LabelStudioBody):
    """``POST /setup``, sent when a model is connected and when Label Studio refreshes the backend's state."""

    project: str | None = Field(None, description="'<project id>.<created timestamp>'")
    label_config: str | None = Field(None, alias="schema", description="The project's labeling config (XML)")
    hostname: str | None = Field(None, description="Label Studio's own idea of its URL: never fetched from")
    access_token: str | None = Field(None, description="Unused: imagerec uses the token registered for that host")
    model_version: str | None = None
    extra_params: Any = Field(None, description="The ML backend's extra params (JSON): kept per project; may name "
                                                "a model (model_id, model_version) and training fields")


    @field_validator("extra_params")
    @classmethod
    def _small_object(cls, value: Any) -> Any:
        if value is not None and not isinstance(value, dict):
            return None  # Label Studio sends whatever the user typed; only an object means anything here
        if value is not None and len(json.dumps(value, default=str)) > MAX_EXTRA_PARAMS_CHARS:
            raise ValueError(f"extra_params is larger than {MAX_EXTRA_PARAMS_CHARS} characters of JSON")
        return value


class SetupResponse(BaseModel):
    model_version: str


class LabelStudioTask(LabelStudioBody):
    id: int | str | None = None
    data: dict[str, Any] = Field(default_factory=dict)


class PredictRequest(LabelStudioBody):
    """``POST /predict``: the tasks to pre-label, one prediction each comes back in the same order."""

    tasks: list[LabelStudioTask] = Field(max_length=MAX_PREDICT_TASKS)
    model_version: str | None = Field(None, description="One of ours (imagerec-model-<id>) picks that model")
    project: str | None = None
    label_config: str | None = None
    params: dict[str, Any] | None = None


class TaskPrediction(BaseModel):
    result: list[dict[str, Any]] = Field(description="Regions in Label Studio's format, percent coordinates")
    score: float | None = None
    model_version: str


class TaskFailure(BaseModel):
    """A task left without a prediction: Label Studio skips an entry with no ``result`` and asks again later."""

    error: str


class PredictResponse(BaseModel):
    results: list[TaskPrediction | TaskFailure]
    model_version: str = Field(description="Also read by older Label Studio versions from the top level")


class Health(BaseModel):
    status: Literal["UP"] = "UP"
    model_class: str = MODEL_CLASS
    version: str


class Versions(BaseModel):
    versions: list[str]


class WebhookEvent(LabelStudioBody):
    """A Label Studio webhook: ``{"action": "START_TRAINING", "project": {"id": 3, …}}``, annotation events…"""

    action: str = Field(max_length=100)
    project: Any = None


class LegacyTrainRequest(LabelStudioBody):
    """Label Studio's older ``POST /train``: the project (``"<id>.<created>"``) and its tasks (not read: the
    task pulls the annotations itself)."""

    project: Any = None


class TrainingAnswer(BaseModel):
    status: Literal["queued", "running", "counted", "ignored"]
    task_id: int | None = None
    detail: str


# --- imagerec's own API for Label Studio (/api/labelstudio) ---------------------------------------------------


class ConnectionCreate(RequestModel):
    url: str = Field(min_length=1, max_length=500, description="Label Studio's base URL, as its users open it")
    token: str = Field(min_length=8, max_length=4096, description="A personal access token or a legacy token "
                                                                  "(stored encrypted, never returned)")


class ConnectionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    url: str
    token_kind: str = Field(description="'personal' (exchanged for Bearer access tokens) or 'legacy' (Token)")
    created_at: datetime
    created_by: str | None


class ProjectRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    labelstudio_url: str = Field(description="The Label Studio it belongs to ('' when its setup named none)")
    project: int
    task: str
    model_id: int | None
    model_version: str | None = None
    extra_params: dict[str, Any]
    problem: str | None = Field(description="Why its last setup failed; null once a setup succeeded")
    problem_at: datetime | None
    dataset_id: int | None = Field(description="The dataset its annotations became (its latest version)")
    last_task_id: int | None = Field(description="The last training from Label Studio (a labelstudio_training task)")
    decision: dict[str, Any] | None = Field(description="What that training's model became: the project's model, "
                                                        "or set aside (with the comparison's regressed classes)")
    annotations_since_training: int
    updated_at: datetime


class ProjectModelUpdate(RequestModel):
    model_id: int = Field(ge=1)


LOOP_KEYS = ("mode", "model_id", "model_version", "metric", "max_class_regression")  # the rest: training fields


class LabelStudioTrainingTask(RequestModel):
    """A ``labelstudio_training`` task's params (``labelstudio.loop``)."""

    project_row_id: int = Field(ge=1)
    labelstudio_url: str
    project: int = Field(ge=1)
    mode: str = Field(description="The training mode: incremental from the project's model, or regular")
    base_model_id: int | None = Field(None, description="The project's model when the task was queued")
    training: dict[str, Any] = Field(default_factory=dict, description="Training fields from the extra params")
    metric: str = Field("map50_95", pattern=r"^(map50_95|map50|precision|recall|f1|top1|top5)$")
    max_class_regression: float = Field(0.02, ge=0, le=1)
    reason: str = Field(max_length=200)
