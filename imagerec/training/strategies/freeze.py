"""Staged freezing: one continuous Ultralytics run whose frozen layers and learning rate change by stage.

API side: the schedule is resolved against the layer groups of the starting point's architecture YAML (read as
text from the installed package, no torch), so a bad layer index is a 422 and the 202 body shows the stages
with their epochs and layers. Child side: it is resolved again against the model actually loaded, and
``staging.StageController`` applies it at each epoch start.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from imagerec.config import Settings
from imagerec.datasets.models import Dataset
from imagerec.errors import Unprocessable
from imagerec.model_versions import repository as models_repository
from imagerec.training.context import RunContext
from imagerec.training.data import data_argument
from imagerec.training.layers import LayerGroups, ScheduleError, package_groups
from imagerec.training.schedule import PRESETS, RANDOM_INIT_WARNING, build_schedule, split_epochs, stage_at, summary
from imagerec.training.schemas import FreezeStrategyRequest, TrainingMode
from imagerec.training.staging import StageController
from imagerec.training.starting_point import architecture_of
from imagerec.training.strategies.base import TrainPlan
from imagerec.training.strategies.regular import base_refs, load_starting_model


def _architecture(session: Session, request: FreezeStrategyRequest) -> str:
    if request.base_model_id is not None:
        return models_repository.get(session, request.base_model_id).architecture  # existence checked before
    if request.pretrained_weights is not None:
        return architecture_of(request.pretrained_weights)
    return request.architecture


def _warnings(params: dict[str, Any]) -> list[str]:
    return [RANDOM_INIT_WARNING] if params.get("architecture") else []


class FreezeStrategy:
    mode = TrainingMode.freeze_strategy
    request_model = FreezeStrategyRequest

    def check(self, session: Session, *, settings: Settings, request: FreezeStrategyRequest,
              dataset: Dataset) -> dict[str, Any]:
        """Validates the schedule for the starting point's layers; returns the initial report (the schedule)."""
        params = request.model_dump(mode="json")
        architecture = _architecture(session, request)
        groups = package_groups(architecture, dataset.task)
        try:
            if groups is None:  # a weights file named after no packaged YAML: its layers are known at load only
                if request.preset is not None:
                    split_epochs(request.epochs, [s.share for s in PRESETS[request.preset]], preset=request.preset)
                note = (f"the layers of '{architecture}' are unknown until its weights load; the schedule is "
                        "checked against the model when training starts")
                return {"warnings": [*_warnings(params), note]}
            schedule = build_schedule(params, groups)
        except ScheduleError as error:
            raise Unprocessable(str(error)) from None
        return {**summary(schedule, groups, preset=request.preset), "warnings": _warnings(params)}

    def refs(self, request: FreezeStrategyRequest) -> list[tuple[str, int, str]]:
        return base_refs(request)

    def plan(self, ctx: RunContext) -> TrainPlan:
        yolo, start = load_starting_model(ctx)
        groups = LayerGroups.from_model_yaml(yolo.model.yaml)
        schedule = build_schedule(ctx.params, groups)  # the loaded model is the truth; ScheduleError fails the task
        controller = StageController(schedule)
        return TrainPlan(
            data=data_argument(ctx.dataset, ctx.run_dir),
            model=yolo,
            architecture=start.architecture,
            parent_model_id=start.parent_model_id,
            callbacks=controller.callbacks(),
            epoch_values=controller.epoch_values,
            model_info=summary(schedule, groups, preset=ctx.params.get("preset")),
        )

    def report(self, ctx: RunContext, trainer: Any, *, cancelled: bool) -> dict[str, Any] | None:
        model = getattr(trainer.model, "module", trainer.model)
        groups = LayerGroups.from_model_yaml(model.yaml)
        schedule = build_schedule(ctx.params, groups)
        return {**summary(schedule, groups, preset=ctx.params.get("preset")), "warnings": _warnings(ctx.params),
                "final_stage": stage_at(schedule, trainer.epoch).number, "epochs_completed": trainer.epoch + 1}
