"""The protocol every training mode implements.

API side (light, no torch): ``request_model`` validates the request, ``check`` does mode-specific checks
against the database and may return the task's initial report (shown from the 202 on; its ``warnings`` also go
to the task log), ``refs`` names the rows the task reads. Child side: ``plan`` prepares data, shapes the
model, picks the trainer class and adds callbacks; ``report`` summarises the run for the task record (when
``cancelled``, the user is waiting: nothing slow).
Everything mode-specific stays behind these methods; the runner around them is the same for every mode.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy.orm import Session

from imagerec.config import Settings
from imagerec.datasets.models import Dataset
from imagerec.training.context import RunContext
from imagerec.training.schemas import TrainingMode, TrainingRequest


@dataclass
class TrainPlan:
    data: str  # what ``train(data=…)`` gets: the server's YAML, or a folder for classify
    model: Any  # the ultralytics YOLO object to train
    architecture: str
    parent_model_id: int | None = None
    trainer_class: type | None = None  # None: Ultralytics' default trainer for the task
    callbacks: list[tuple[str, Callable]] = field(default_factory=list)
    train_args: dict[str, Any] = field(default_factory=dict)  # mode-specific overrides
    model_info: dict[str, Any] = field(default_factory=dict)  # stored with the registered model
    epoch_values: Callable[[Any], dict[str, float]] | None = None  # trainer → extra per-epoch metric values


class TrainingStrategy(Protocol):
    mode: TrainingMode
    request_model: type[TrainingRequest]

    def check(self, session: Session, *, settings: Settings, request: TrainingRequest,
              dataset: Dataset) -> dict[str, Any] | None: ...

    def refs(self, request: TrainingRequest) -> list[tuple[str, int, str]]: ...

    def plan(self, ctx: RunContext) -> TrainPlan: ...

    def report(self, ctx: RunContext, trainer: Any, *, cancelled: bool) -> dict[str, Any] | None: ...
