"""Workers and the deployment they belong to.

A ``Worker`` row is what a process that runs tasks says about itself, rewritten at every heartbeat: the built-in
executor of an API process, or an ``imagerec worker`` (Celery) on any machine. A row whose heartbeat is older
than the lease timeout is a worker that is gone; its running tasks become ``interrupted`` (see
``executor.leases``). ``Deployment`` is one row: the token that the data dir's marker file must hold, so a worker
that mounted another folder (or none) refuses to start instead of writing runs nobody can read.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from imagerec.db import Base, utcnow


class Worker(Base):
    __tablename__ = "workers"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)  # the owner prefix of its tasks' ``worker``
    kind: Mapped[str] = mapped_column(String(16))  # "local" | "celery"
    host: Mapped[str] = mapped_column(String(200))
    pid: Mapped[int]
    queues: Mapped[list]
    slots: Mapped[int]
    gpus: Mapped[list]
    version: Mapped[str] = mapped_column(String(32))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class Deployment(Base):
    __tablename__ = "deployment"

    id: Mapped[int] = mapped_column(primary_key=True)  # always 1
    data_dir_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
