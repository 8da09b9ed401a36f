"""Making a model the default with a guard: measured against the current default on the same images first.

With a guard, the candidate and the current default need a succeeded evaluation on the guard's dataset and
split, measured the same way (the default evaluation parameters); existing ones are reused. When one is missing,
an evaluation task for the missing models is queued and the answer is 202: promote again once it has succeeded.
When both exist, a class whose metric fell by more than ``max_class_regression`` refuses the promotion (409 with
the comparison) unless ``force``; the answer says when a promotion was forced past a regression.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from imagerec.config import Settings
from imagerec.errors import Conflict
from imagerec.evaluation import repository, service
from imagerec.evaluation.compare import compare
from imagerec.evaluation.schemas import EvaluationParams, EvaluationRequest, PromotionRequest
from imagerec.executor.base import Executor
from imagerec.model_versions import repository as models_repository
from imagerec.model_versions.models import ModelVersion


@dataclass
class Pending:
    """Evaluations queued so that the guard can decide; nothing was promoted yet."""

    task_id: int
    evaluation_ids: list[int]


def measured_against(session: Session, *, reference, candidate, metric: str, threshold: float) -> dict:
    """Two succeeded evaluations on the same images compared: per-class deltas and ``regressed_classes``."""
    return compare(reference, candidate, images_a=repository.images_by_name(session, evaluation_id=reference.id),
                   images_b=repository.images_by_name(session, evaluation_id=candidate.id), metric=metric,
                   threshold=threshold)


def guard_check(session: Session, *, settings: Settings, executor: Executor, model: ModelVersion,
                request: PromotionRequest, created_by: str | None) -> dict | Pending | None:
    """None: nothing to guard against (no default yet, or it is this model). Pending: evaluations queued. Else
    the verdict: the comparison, and whether it was forced. Raises 409 on a regression without ``force``."""
    guard = request.guard
    current = models_repository.get_default(session, task=model.task)
    if guard is None or current is None or current.id == model.id:
        return None
    params = EvaluationParams(split=guard.split).model_dump(mode="json")
    found = {m.id: repository.matching(session, model_id=m.id, dataset_id=guard.dataset_id, split=guard.split,
                                       params=params) for m in (current, model)}
    missing = [model_id for model_id, evaluation in found.items() if evaluation is None]
    if missing:
        queued = service.start(session, settings=settings, executor=executor, created_by=created_by,
                               request=EvaluationRequest(model_ids=missing, dataset_id=guard.dataset_id,
                                                         split=guard.split))
        return Pending(task_id=queued[0].task_id, evaluation_ids=[e.id for e in queued])
    comparison = measured_against(session, reference=found[current.id], candidate=found[model.id],
                                  metric=guard.metric, threshold=guard.max_class_regression)
    regressed = comparison["regressed_classes"]
    if regressed and not request.force:
        names = ", ".join(f"{item['class']} ({item['delta']:+.3f})" for item in regressed)
        raise Conflict(f"model {model.id} is worse than the current default {current.id} on {names} "
                       f"({guard.metric}, limit {guard.max_class_regression}); send force: true to promote anyway",
                       details={"comparison": comparison})
    return {"against_model_id": current.id, "forced": bool(regressed), "regressed_classes": regressed,
            "comparison": comparison}
