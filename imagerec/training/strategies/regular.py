"""Regular training: the standard Ultralytics loop from the chosen starting point."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from imagerec.config import Settings
from imagerec.datasets.models import Dataset
from imagerec.training import starting_point
from imagerec.training.context import RunContext
from imagerec.training.data import data_argument
from imagerec.training.schemas import TrainingMode, TrainingRequest
from imagerec.training.strategies.base import TrainPlan


def base_refs(request: TrainingRequest) -> list[tuple[str, int, str]]:
    refs = [("dataset", request.dataset_id, "dataset")]
    if request.base_model_id is not None:
        refs.append(("model", request.base_model_id, "base_model"))
    return refs


def load_starting_model(ctx: RunContext):
    from ultralytics import YOLO

    start = starting_point.resolve(ctx)
    yolo = YOLO(start.source)
    if yolo.task != ctx.task:
        raise ValueError(f"the starting weights are a {yolo.task} model but the dataset is {ctx.task}")
    return yolo, start


class RegularStrategy:
    mode = TrainingMode.regular
    request_model = TrainingRequest

    def check(self, session: Session, *, settings: Settings, request: TrainingRequest, dataset: Dataset) -> None:
        """Nothing beyond the checks every mode gets."""

    def refs(self, request: TrainingRequest) -> list[tuple[str, int, str]]:
        return base_refs(request)

    def plan(self, ctx: RunContext) -> TrainPlan:
        yolo, start = load_starting_model(ctx)
        return TrainPlan(
            data=data_argument(ctx.dataset, ctx.run_dir),
            model=yolo,
            architecture=start.architecture,
            parent_model_id=start.parent_model_id,
        )

    def report(self, ctx: RunContext, trainer: Any, *, cancelled: bool) -> dict[str, Any] | None:
        return None
