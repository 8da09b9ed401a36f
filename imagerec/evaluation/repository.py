"""Every query on evaluations and their per-image rows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from imagerec.db import utcnow
from imagerec.evaluation.models import Evaluation, EvaluationImage

SORTS = {
    "errors": (EvaluationImage.errors.desc(), EvaluationImage.score.desc()),
    "fp": (EvaluationImage.fp.desc(), EvaluationImage.score.desc()),
    "fn": (EvaluationImage.fn.desc(), EvaluationImage.errors.desc()),
    "score": (EvaluationImage.score.desc(), EvaluationImage.errors.desc()),
}
KIND_COLUMNS = {"fp": EvaluationImage.fp, "fn": EvaluationImage.fn, "wrong_class": EvaluationImage.wrong_class,
                "localisation": EvaluationImage.localisation}


def add(session: Session, *, evaluation: Evaluation) -> Evaluation:
    session.add(evaluation)
    session.flush()
    return evaluation


def get(session: Session, evaluation_id: int) -> Evaluation | None:
    return session.get(Evaluation, evaluation_id, populate_existing=True)


def of_task(session: Session, *, task_id: int) -> Sequence[Evaluation]:
    return session.scalars(select(Evaluation).where(Evaluation.task_id == task_id).order_by(Evaluation.id)).all()


def group_ids(session: Session, *, task_id: int | None) -> list[int]:
    if task_id is None:
        return []
    return list(session.scalars(select(Evaluation.id).where(Evaluation.task_id == task_id).order_by(Evaluation.id)))


def list_evaluations(session: Session, *, model_id: int | None, dataset_id: int | None, limit: int,
                     offset: int) -> Sequence[Evaluation]:
    query = select(Evaluation).order_by(Evaluation.id.desc()).limit(limit).offset(offset)
    if model_id is not None:
        query = query.where(Evaluation.model_id == model_id)
    if dataset_id is not None:
        query = query.where(Evaluation.dataset_id == dataset_id)
    return session.scalars(query).all()


def matching(session: Session, *, model_id: int, dataset_id: int, split: str, params: dict[str, Any]) -> \
        Evaluation | None:
    """The newest succeeded evaluation of ``model_id`` on these images measured with these ``params``, with its
    per-image analysis (a training's own validation has none, so it is not reused)."""
    rows = session.scalars(select(Evaluation).where(
        Evaluation.model_id == model_id, Evaluation.dataset_id == dataset_id, Evaluation.split == split,
        Evaluation.status == "succeeded", Evaluation.metrics.is_not(None)).order_by(Evaluation.id.desc())).all()
    keys = ("conf", "iou", "match_iou", "imgsz")
    return next((row for row in rows if row.params.get("analysis") and
                 all(row.params.get(k) == params.get(k) for k in keys)), None)


def store_result(session: Session, *, evaluation_id: int, metrics: dict, images: list[dict] | None,
                 label_issues: list[dict] | None, files_dir: str, count: int) -> None:
    session.execute(delete(EvaluationImage).where(EvaluationImage.evaluation_id == evaluation_id))
    if images:
        session.execute(insert(EvaluationImage), [{"evaluation_id": evaluation_id, **row} for row in images])
    session.execute(update(Evaluation).where(Evaluation.id == evaluation_id).values(
        metrics=metrics, label_issues=label_issues, files_dir=files_dir, images=count, finished_at=utcnow(),
        recorded_status="succeeded").execution_options(synchronize_session=False))


def image_page(session: Session, *, evaluation_id: int, sort: str, kind: str | None, class_name: str | None,
               limit: int, offset: int) -> tuple[int, Sequence[EvaluationImage]]:
    query = select(EvaluationImage).where(EvaluationImage.evaluation_id == evaluation_id)
    if kind is not None and class_name is None:
        query = query.where(KIND_COLUMNS[kind] > 0)
    query = query.order_by(*SORTS[sort], EvaluationImage.image_id)
    if class_name is None:
        total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
        return total, session.scalars(query.limit(limit).offset(offset)).all()
    rows = [row for row in session.scalars(query) if _has(row, class_name, kind)]  # JSON: filtered here
    return len(rows), rows[offset:offset + limit]


def _has(row: EvaluationImage, class_name: str, kind: str | None) -> bool:
    counts = row.per_class.get(class_name)
    if counts is None:
        return False
    return counts.get(kind, 0) > 0 if kind is not None else any(counts.values())


def image(session: Session, *, evaluation_id: int, image_id: int) -> EvaluationImage | None:
    return session.get(EvaluationImage, (evaluation_id, image_id))


def images_by_name(session: Session, *, evaluation_id: int) -> dict[str, EvaluationImage]:
    rows = session.scalars(select(EvaluationImage).where(EvaluationImage.evaluation_id == evaluation_id))
    return {row.image: row for row in rows}
