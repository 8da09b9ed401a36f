"""``Annotated`` dependency aliases: the one place routes get settings, the session and loaded rows."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session, sessionmaker

from imagerec.annotation.runtime import AnnotationRuntime
from imagerec.auth.deps import get_caller
from imagerec.auth.scopes import Caller
from imagerec.config import Settings
from imagerec.datasets import service as datasets_service
from imagerec.datasets.models import Dataset
from imagerec.db import read_session, unit_of_work
from imagerec.executor.base import Executor
from imagerec.fields import IdPath


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


READ_ONLY_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def get_session(request: Request) -> Iterator[Session]:
    """The request's unit of work: commits when the handler returns, rolls back when it raises.

    GET, HEAD and OPTIONS only read: they get a read session, which never takes SQLite's write lock, so any
    number of readers runs beside a training child's writes (a GET that wrote would have its write discarded).
    """
    factory = request.app.state.session_factory
    session_scope = read_session if request.method in READ_ONLY_METHODS else unit_of_work
    with session_scope(factory) as session:
        yield session


def get_executor(request: Request) -> Executor:
    return request.app.state.executor


async def get_session_factory(request: Request) -> sessionmaker[Session]:
    """For async routes that must not hold a session (and SQLite's write lock) across slow work. Async, like
    the next one: a plain `def` dependency would cost a worker-thread round trip per request."""
    return request.app.state.session_factory


async def get_annotation_runtime(request: Request) -> AnnotationRuntime:
    return request.app.state.annotation_runtime


SettingsDep = Annotated[Settings, Depends(get_settings)]
CallerDep = Annotated[Caller, Depends(get_caller)]  # resolved once per request (the scope check did it already)
SessionDep = Annotated[Session, Depends(get_session)]
ExecutorDep = Annotated[Executor, Depends(get_executor)]
SessionFactoryDep = Annotated[sessionmaker[Session], Depends(get_session_factory)]
AnnotationRuntimeDep = Annotated[AnnotationRuntime, Depends(get_annotation_runtime)]


def get_dataset(dataset_id: IdPath, session: SessionDep) -> Dataset:
    return datasets_service.get_or_404(session, dataset_id=dataset_id)


DatasetDep = Annotated[Dataset, Depends(get_dataset)]
