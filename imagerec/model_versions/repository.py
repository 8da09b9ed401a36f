"""Every query on registered models. A deleted model is a tombstone (``deleted_at`` set): only ``get_record``
sees it, and the ``dataset`` / ``parent`` lineage of the models that point at it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from imagerec.model_versions.models import ModelVersion

LIVE = ModelVersion.deleted_at.is_(None)


def get(session: Session, model_id: int) -> ModelVersion | None:
    """A live model: what annotation, training and Label Studio may use."""
    return session.scalar(select(ModelVersion).where(ModelVersion.id == model_id, LIVE))


def get_record(session: Session, model_id: int) -> ModelVersion | None:
    """The row whether or not it was deleted."""
    return session.get(ModelVersion, model_id)


def list_models(session: Session, *, task: str | None, limit: int, offset: int) -> Sequence[ModelVersion]:
    query = select(ModelVersion).where(LIVE).order_by(ModelVersion.created_at.desc(), ModelVersion.id.desc())
    if task is not None:
        query = query.where(ModelVersion.task == task)
    return session.scalars(query.limit(limit).offset(offset)).all()


def trained_on(session: Session, *, dataset_id: int) -> Sequence[int]:
    """Ids of the live models whose training data was this dataset."""
    query = select(ModelVersion.id).where(ModelVersion.dataset_id == dataset_id, LIVE).order_by(ModelVersion.id)
    return session.scalars(query).all()


def children(session: Session, *, parent_id: int) -> Sequence[int]:
    """Ids of the live models trained from this one."""
    query = select(ModelVersion.id).where(ModelVersion.parent_id == parent_id, LIVE).order_by(ModelVersion.id)
    return session.scalars(query).all()


def list_by_mode(session: Session, *, task: str, training_mode: str) -> Sequence[ModelVersion]:
    query = select(ModelVersion).where(ModelVersion.task == task, ModelVersion.training_mode == training_mode, LIVE)
    return session.scalars(query.order_by(ModelVersion.id)).all()


def add(session: Session, *, model: ModelVersion) -> ModelVersion:
    session.add(model)
    session.flush()
    return model


def mark_deleted(session: Session, *, model: ModelVersion, at: datetime) -> None:
    """A tombstone is never a default: the task is left without one."""
    model.deleted_at = at
    model.is_default = False
    session.flush()


def get_default(session: Session, *, task: str) -> ModelVersion | None:
    query = select(ModelVersion).where(ModelVersion.task == task, ModelVersion.is_default.is_(True), LIVE)
    return session.scalar(query)


def make_default(session: Session, *, model: ModelVersion) -> None:
    """Clear the task's current default, then mark ``model`` (two statements: the unique index is per row)."""
    clear = update(ModelVersion).where(ModelVersion.task == model.task, ModelVersion.is_default.is_(True))
    session.execute(clear.values(is_default=False).execution_options(synchronize_session=False))
    session.flush()
    mark = update(ModelVersion).where(ModelVersion.id == model.id).values(is_default=True)
    session.execute(mark.execution_options(synchronize_session=False))
