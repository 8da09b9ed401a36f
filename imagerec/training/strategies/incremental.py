"""Incremental training: new classes or more data on top of a registered model, without forgetting.

API side (``incremental.checks``): the base model's lineage gives the replay sources, the class names merge, bad
combinations are 4xx. Child side: the run's dataset is materialised (new data + pseudo-labels + replay,
``incremental.build``), the trainer widens the base model's class outputs (``incremental.heads``) and adds the
frozen base model's old-class responses to the loss (``distill``), and the report measures old and new classes
against the base model (``incremental.evaluation``).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from imagerec.config import Settings
from imagerec.datasets.models import Dataset
from imagerec.training.context import RunContext
from imagerec.training.incremental import checks
from imagerec.training.incremental.classes import ClassMerge, merge_classes
from imagerec.training.schemas import IncrementalRequest, TrainingMode
from imagerec.training.strategies.base import TrainPlan
from imagerec.vision import VisionTask

log = logging.getLogger("imagerec.training.incremental")


def _merge(ctx: RunContext) -> ClassMerge:
    return merge_classes(ctx.base_model.class_names, ctx.dataset.class_names)


def _distill_spec(ctx: RunContext):
    from imagerec.training.distill.terms import BoxDistillation, ScoreDistillation
    from imagerec.training.distill.trainer import DistillSpec

    settings = ctx.params["distill_old"]
    if not settings["enabled"] or settings["weight"] == 0:
        return None
    weight, temperature = settings["weight"], settings["temperature"]
    classify = ctx.task == VisionTask.classify

    spare = None if classify else len(ctx.base_model.class_names)  # objects of classes the base never saw

    def make_terms(teacher, student) -> list:
        terms = [ScoreDistillation(weight=weight, temperature=temperature, classify=classify, spare_from_class=spare)]
        if not classify:
            terms.append(BoxDistillation(weight=weight, temperature=temperature, reg_max=student.model[-1].reg_max,
                                         spare_from_class=spare))
        return terms

    return DistillSpec(teacher_weights=ctx.base_model.weights_path, make_terms=make_terms)


class IncrementalStrategy:
    mode = TrainingMode.incremental
    request_model = IncrementalRequest

    def check(self, session: Session, *, settings: Settings, request: IncrementalRequest,
              dataset: Dataset) -> dict[str, Any]:
        return checks.check(session, request, dataset)

    def refs(self, request: IncrementalRequest) -> list[tuple[str, int, str]]:
        sources = request.replay.source_dataset_ids or []  # resolved by check()
        return [("dataset", request.dataset_id, "dataset"), ("model", request.base_model_id, "base_model"),
                *[("dataset", source_id, "replay_source") for source_id in sources]]

    def plan(self, ctx: RunContext) -> TrainPlan:
        # child side only: torch and Ultralytics stay out of the API process
        from ultralytics import YOLO

        from imagerec.training.distill.trainer import DistillTrainerMixin, trainer_class
        from imagerec.training.incremental.build import build
        from imagerec.training.incremental.heads import WidenHeadTrainerMixin

        merge = _merge(ctx)
        log.info(f"classes: {merge.names} (old: {merge.old_count}, added: {merge.added or 'none'}, "
                 f"extended: {merge.extended or 'none'})")
        data = build(ctx, merge)
        base = YOLO(str(ctx.base_model.weights_path))  # registered weights, produced by this service
        freeze = ctx.params.get("freeze")
        return TrainPlan(
            data=data.data,
            model=base,
            architecture=ctx.base_model.architecture,
            parent_model_id=ctx.base_model.id,
            trainer_class=trainer_class(
                ctx.task, (WidenHeadTrainerMixin, DistillTrainerMixin), distill=_distill_spec(ctx),
                merged_names=merge.names if ctx.task == VisionTask.classify else None,
            ),
            train_args={"freeze": freeze} if freeze else {},
            model_info={**checks.class_report(merge), "base_model_id": ctx.base_model.id,
                        "replay_sources": [s.id for s in ctx.datasets_by_role.get("replay_source", [])],
                        **{k: data.manifest[k] for k in ("replay_images", "replay_per_class", "pseudo_labels")
                           if k in data.manifest}},
        )

    def report(self, ctx: RunContext, trainer: Any, *, cancelled: bool) -> dict[str, Any] | None:
        from imagerec.training.incremental.build import MANIFEST
        from imagerec.training.incremental.evaluation import evaluate

        merge = _merge(ctx)
        data_root = ctx.run_dir / "data"
        manifest = json.loads((data_root / MANIFEST).read_text())
        summary = {**checks.class_report(merge), **{k: v for k, v in manifest.items() if k != "eval_sets"}}
        if cancelled:
            return summary
        weights = Path(trainer.best) if Path(trainer.best).exists() else Path(trainer.last)
        evaluation = evaluate(ctx, merge, data_root, manifest, weights)
        log.info(f"evaluation: old classes {evaluation['old_classes']}, new classes {evaluation['new_classes']}, "
                 f"base on old classes {evaluation['base_old_classes']}, retention {evaluation['retention']}")
        return {**summary, "evaluation": evaluation}
