"""``Annotated`` dependency aliases: the one place routes get settings, the session and loaded rows."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from imagerec.config import Settings
from imagerec.datasets import service as datasets_service
from imagerec.datasets.models import Dataset
from imagerec.db import unit_of_work
from imagerec.executor.base import Executor


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_session(request: Request) -> Iterator[Session]:
    """The request's unit of work: commits when the handler returns, rolls back when it raises."""
    with unit_of_work(request.app.state.session_factory) as session:
        yield session


def get_executor(request: Request) -> Executor:
    return request.app.state.executor


SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[Session, Depends(get_session)]
ExecutorDep = Annotated[Executor, Depends(get_executor)]


def get_dataset(dataset_id: int, session: SessionDep) -> Dataset:
    return datasets_service.get_or_404(session, dataset_id=dataset_id)


DatasetDep = Annotated[Dataset, Depends(get_dataset)]
