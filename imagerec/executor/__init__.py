from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from imagerec.config import Settings
from imagerec.executor.base import Executor


def build_executor(settings: Settings, session_factory: sessionmaker[Session]) -> Executor:
    if settings.executor == "celery":
        from imagerec.executor.distributed import CeleryExecutor

        return CeleryExecutor(settings=settings, session_factory=session_factory)
    from imagerec.executor.local import LocalExecutor

    return LocalExecutor(settings=settings, session_factory=session_factory)
