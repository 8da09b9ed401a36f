"""Every query on datasets. A deleted dataset is a tombstone (``deleted_at`` set): only ``get_record`` sees it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from imagerec.datasets.models import Dataset

LIVE = Dataset.deleted_at.is_(None)


def get(session: Session, *, dataset_id: int) -> Dataset | None:
    """A live dataset: what training, pre-labelling and replay may read."""
    return session.scalar(select(Dataset).where(Dataset.id == dataset_id, LIVE))


def get_record(session: Session, *, dataset_id: int) -> Dataset | None:
    """The row whether or not it was deleted."""
    return session.get(Dataset, dataset_id)


def next_version(session: Session, *, name: str) -> int:
    """One past the highest version of ``name`` ever registered (deleted versions keep their number)."""
    return (session.scalar(select(func.max(Dataset.version)).where(Dataset.name == name)) or 0) + 1


def name_taken(session: Session, *, name: str) -> bool:
    return bool(session.scalar(select(exists().where(Dataset.name == name, LIVE))))


def list_datasets(session: Session, *, task: str | None, limit: int, offset: int) -> Sequence[Dataset]:
    query = select(Dataset).where(LIVE).order_by(Dataset.created_at.desc(), Dataset.id.desc())
    if task is not None:
        query = query.where(Dataset.task == task)
    return session.scalars(query.limit(limit).offset(offset)).all()


def add(session: Session, *, dataset: Dataset) -> Dataset:
    session.add(dataset)
    session.flush()
    return dataset


def mark_deleted(session: Session, *, dataset: Dataset, at: datetime) -> None:
    dataset.deleted_at = at
    session.flush()
