from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from imagerec.config import Settings
from imagerec.executor.base import Executor


def build_executor(settings: Settings, session_factory: sessionmaker[Session]) -> Executor:
    from imagerec.executor.local import LocalExecutor

    return LocalExecutor(settings=settings, session_factory=session_factory)
