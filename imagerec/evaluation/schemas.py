"""Evaluation requests and answers.

``conf`` is the operating point: precision, recall, F1, the confusion matrix and the per-image analysis are
measured at it. mAP is always Ultralytics' own, over every confidence (its validator keeps predictions down to
0.001), so the numbers equal ``yolo val``'s. ``iou`` is the NMS IoU handed to the validator (Ultralytics' default
0.7); ``match_iou`` is the IoU a prediction needs to count as finding a label in the per-image analysis.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from imagerec.fields import Flag, Id, Number, QueueName, RequestModel


class Split(StrEnum):
    val = "val"
    train = "train"
    test = "test"
    all = "all"


class EvaluationParams(RequestModel):
    split: Split = Split.val
    conf: Number = Field(0.25, gt=0, lt=1, description="Operating confidence for P/R/F1, confusion, per image")
    iou: Number = Field(0.7, gt=0, le=1, description="NMS IoU, as in `yolo val`")
    match_iou: Number = Field(0.5, gt=0, le=1, description="IoU at which a prediction finds a label (per image)")
    imgsz: int | None = Field(None, ge=32, le=4096, multiple_of=32, strict=True,
                              description="Default: the size the model was trained at")
    batch: int = Field(16, ge=1, le=1024, strict=True)
    device: str = Field("auto", pattern=r"^(auto|cpu|\d{1,2})$", description="auto: the first GPU, else the CPU")
    analysis: Flag = Field(True, description="Per-image analysis and likely label errors (a little slower)")


class EvaluationRequest(EvaluationParams):
    model_id: Id | None = Field(None, description="The model to evaluate")
    queue: QueueName | None = None
    model_ids: list[Id] | None = Field(None, min_length=1, max_length=8,
                                       description="Or several models, evaluated on the same images in one task")
    dataset_id: Id

    @model_validator(mode="after")
    def _one_way_to_name_models(self) -> EvaluationRequest:
        if (self.model_id is None) == (self.model_ids is None):
            raise ValueError("give model_id or model_ids (not both)")
        if self.model_ids is not None and len(set(self.model_ids)) != len(self.model_ids):
            raise ValueError("model_ids holds a model twice")
        return self

    @property
    def models(self) -> list[int]:
        return self.model_ids if self.model_ids is not None else [self.model_id]


class EvaluationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    status: str
    task_id: int | None
    model_id: int
    dataset_id: int | None
    split: str
    vision_task: str
    source: str = Field(description="request: asked for over HTTP; training: a training's final validation")
    params: dict[str, Any]
    classes: dict[str, list[str]] | None = Field(description="common, model_only and dataset_only class names")
    metrics: dict[str, Any] | None
    images: int | None
    label_issues_count: int | None = None
    group_ids: list[int] = Field(default_factory=list, description="Evaluations of the same task (same images)")
    created_at: datetime
    finished_at: datetime | None
    created_by: str | None


class EvaluationImageRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    image_id: int
    image: str
    tp: int
    fp: int
    fn: int
    wrong_class: int
    localisation: int
    errors: int
    score: float
    per_class: dict[str, dict[str, int]]


class EvaluationImagePage(BaseModel):
    evaluation_id: int
    total: int
    items: list[EvaluationImageRead]


class LabelIssue(BaseModel):
    image: str
    image_id: int | None
    reason: str
    box: list[float] | None
    class_name: str
    predicted_class_name: str | None
    score: float
    iou: float | None


class LabelIssuePage(BaseModel):
    evaluation_id: int
    total: int
    items: list[LabelIssue]


class Guard(RequestModel):
    dataset_id: Id
    split: Split = Split.val
    metric: str = Field("map50_95", pattern=r"^(map50_95|map50|precision|recall|f1|top1|top5)$")
    max_class_regression: Number = Field(0.02, ge=0, le=1)


class PromotionRequest(RequestModel):
    guard: Guard | None = None
    force: Flag = False
