from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from imagerec.model_versions.models import ModelVersion


def get(session: Session, model_id: int) -> ModelVersion | None:
    return session.get(ModelVersion, model_id)


def list_models(session: Session, *, task: str | None, limit: int, offset: int) -> Sequence[ModelVersion]:
    query = select(ModelVersion).order_by(ModelVersion.created_at.desc(), ModelVersion.id.desc())
    if task is not None:
        query = query.where(ModelVersion.task == task)
    return session.scalars(query.limit(limit).offset(offset)).all()


def add(session: Session, *, model: ModelVersion) -> ModelVersion:
    session.add(model)
    session.flush()
    return model


def remove(session: Session, *, model: ModelVersion) -> None:
    session.delete(model)


def get_default(session: Session, *, task: str) -> ModelVersion | None:
    return session.scalar(select(ModelVersion).where(ModelVersion.task == task, ModelVersion.is_default.is_(True)))


def make_default(session: Session, *, model: ModelVersion) -> None:
    """Clear the task's current default, then mark ``model`` (two statements: the unique index is per row)."""
    clear = update(ModelVersion).where(ModelVersion.task == model.task, ModelVersion.is_default.is_(True))
    session.execute(clear.values(is_default=False).execution_options(synchronize_session=False))
    session.flush()
    mark = update(ModelVersion).where(ModelVersion.id == model.id).values(is_default=True)
    session.execute(mark.execution_options(synchronize_session=False))
