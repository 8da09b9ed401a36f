"""Every query on datasets."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from imagerec.datasets.models import Dataset


def get(session: Session, *, dataset_id: int) -> Dataset | None:
    return session.get(Dataset, dataset_id)


def name_taken(session: Session, *, name: str) -> bool:
    return bool(session.scalar(select(exists().where(Dataset.name == name))))


def list_datasets(session: Session, *, task: str | None, limit: int, offset: int) -> Sequence[Dataset]:
    query = select(Dataset).order_by(Dataset.created_at.desc(), Dataset.id.desc()).limit(limit).offset(offset)
    if task is not None:
        query = query.where(Dataset.task == task)
    return session.scalars(query).all()


def add(session: Session, *, dataset: Dataset) -> Dataset:
    session.add(dataset)
    session.flush()
    return dataset


def remove(session: Session, *, dataset: Dataset) -> None:
    session.delete(dataset)
    session.flush()
