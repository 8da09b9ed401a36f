"""Every query on Label Studio connections and projects."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from imagerec.labelstudio.models import LabelStudioConnection, LabelStudioProject


def get_connection(session: Session, *, connection_id: int) -> LabelStudioConnection | None:
    return session.get(LabelStudioConnection, connection_id)


def connection_by_url(session: Session, *, url: str) -> LabelStudioConnection | None:
    return session.scalar(select(LabelStudioConnection).where(LabelStudioConnection.url == url))


def list_connections(session: Session) -> Sequence[LabelStudioConnection]:
    return session.scalars(select(LabelStudioConnection).order_by(LabelStudioConnection.id)).all()


def add(session: Session, row: LabelStudioConnection | LabelStudioProject) -> None:
    session.add(row)
    session.flush()


def delete(session: Session, row: LabelStudioConnection) -> None:
    session.delete(row)
    session.flush()


def get_project(session: Session, *, url: str, project: int) -> LabelStudioProject | None:
    return session.scalar(select(LabelStudioProject).where(LabelStudioProject.labelstudio_url == url,
                                                          LabelStudioProject.project == project))


def projects_numbered(session: Session, *, project: int) -> Sequence[LabelStudioProject]:
    """Every Label Studio's project with this id (Label Studio's predict calls name no host)."""
    return session.scalars(select(LabelStudioProject).where(LabelStudioProject.project == project)
                           .order_by(LabelStudioProject.updated_at.desc())).all()


def lock_project(session: Session, *, row_id: int) -> None:
    """Hold the project's row until the transaction ends: two requests for one project queue one loop task.
    (PostgreSQL row lock; SQLite's ``BEGIN IMMEDIATE`` already serialises writers, and ignores FOR UPDATE.)"""
    session.execute(select(LabelStudioProject.id).where(LabelStudioProject.id == row_id).with_for_update())
