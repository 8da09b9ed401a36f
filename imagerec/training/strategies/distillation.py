"""Distillation: a student (any regular starting point) trained to follow a registered teacher model.

API side: the teacher must exist and share the dataset's task and class names (a student base model too), so the
teacher's outputs mean the same classes as the labels. Child side: Ultralytics' task trainer with
``DistillTrainerMixin`` in front (the frozen teacher and the terms of ``distill.losses``); at the end the teacher
is evaluated on the same validation split, so the report shows both side by side.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from imagerec.config import Settings
from imagerec.datasets.models import Dataset
from imagerec.errors import NotFound, Unprocessable
from imagerec.evaluation.validate import validate
from imagerec.model_versions import repository as models_repository
from imagerec.model_versions.models import ModelVersion
from imagerec.training.context import ModelInfo, RunContext
from imagerec.training.data import data_argument
from imagerec.training.metrics import normalize
from imagerec.training.schemas import DistillationLosses, DistillationRequest, TrainingMode
from imagerec.training.strategies.base import TrainPlan
from imagerec.training.strategies.regular import base_refs, load_starting_model


def check_matches_dataset(model: ModelVersion, dataset: Dataset, *, role: str) -> None:
    if model.task != dataset.task:
        raise Unprocessable(f"the {role} (model {model.id}) is a {model.task} model but dataset {dataset.id} is a "
                            f"{dataset.task} dataset")
    if list(model.class_names) != list(dataset.class_names):
        raise Unprocessable(f"the {role} (model {model.id}) has classes {list(model.class_names)} but dataset "
                            f"{dataset.id} has {list(dataset.class_names)}: distillation needs the same class "
                            "names in the same order")


def check_a_term_applies(losses: DistillationLosses, *, task: str) -> None:
    """The request already has a term with weight > 0; classify has no boxes, so ``box`` alone distils nothing."""
    if task == "classify" and all(getattr(losses, term).weight == 0 for term in ("cls", "feature", "consistency")):
        raise Unprocessable("the box term does not apply to classify (no boxes): give cls, feature or consistency "
                            "a weight > 0, or this is regular training")


def _teacher(ctx: RunContext) -> ModelInfo:
    return ctx.models_by_role["teacher"][0]


def _scores(raw: dict[str, Any]) -> dict[str, float | None]:
    """Validation scores without the loss columns (the teacher has no training losses to compare)."""
    return {key: value for key, value in normalize(raw).items() if not key.startswith(("val_", "train_"))}


class DistillationStrategy:
    mode = TrainingMode.distillation
    request_model = DistillationRequest

    def check(self, session: Session, *, settings: Settings, request: DistillationRequest,
              dataset: Dataset) -> dict[str, Any]:
        teacher = models_repository.get(session, request.teacher_model_id)
        if teacher is None:
            raise NotFound(f"teacher model {request.teacher_model_id} not found")
        check_matches_dataset(teacher, dataset, role="teacher")
        check_a_term_applies(request.losses, task=dataset.task)
        if request.base_model_id is not None:  # existence and task checked by the service already
            check_matches_dataset(models_repository.get(session, request.base_model_id), dataset, role="student")
        return {"teacher": {"id": teacher.id, "architecture": teacher.architecture}}

    def refs(self, request: DistillationRequest) -> list[tuple[str, int, str]]:
        return [*base_refs(request), ("model", request.teacher_model_id, "teacher")]

    def plan(self, ctx: RunContext) -> TrainPlan:
        from imagerec.training.distill.losses import term_factory
        from imagerec.training.distill.trainer import DistillSpec, DistillTrainerMixin, trainer_class

        yolo, start = load_starting_model(ctx)
        teacher = _teacher(ctx)
        spec = DistillSpec(teacher_weights=teacher.weights_path,
                           make_terms=term_factory(ctx.task, ctx.params["losses"]))
        return TrainPlan(
            data=data_argument(ctx.dataset, ctx.run_dir),
            model=yolo,
            architecture=start.architecture,
            parent_model_id=start.parent_model_id,
            trainer_class=trainer_class(ctx.task, (DistillTrainerMixin,), distill=spec),
            model_info={"teacher": {"id": teacher.id, "architecture": teacher.architecture},
                        "losses": ctx.params["losses"]},
        )

    def report(self, ctx: RunContext, trainer: Any, *, cancelled: bool) -> dict[str, Any]:
        teacher = _teacher(ctx)
        summary = {"teacher": {"id": teacher.id, "architecture": teacher.architecture},
                   "epochs_completed": trainer.epoch + 1}
        if cancelled:  # the comparison waits for the finished (resumed) run
            return summary
        summary["teacher"]["metrics"] = self._teacher_metrics(ctx, trainer)
        summary["student"] = {"metrics": _scores(trainer.metrics or {})}
        return summary

    @staticmethod
    def _teacher_metrics(ctx: RunContext, trainer: Any) -> dict[str, float | None]:
        """The teacher on the student's validation split, with the student's image size and device."""
        results = validate(_teacher(ctx).weights_path,  # a registered model's weights: produced by this service
                           data=data_argument(ctx.dataset, ctx.run_dir), task=ctx.task, split="val",
                           imgsz=int(trainer.args.imgsz), batch=int(trainer.args.batch), device=trainer.args.device,
                           project=ctx.run_dir, name="teacher-val")
        return _scores(results.results_dict)
