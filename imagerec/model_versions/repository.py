from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
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
