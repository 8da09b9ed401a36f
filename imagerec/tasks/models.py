"""Task records. A task is one asynchronous unit of work: a training, a pre-labelling job or an evaluation.

Status is a small enum; every change of it is a conditional UPDATE (see repository.transition), so the API's
cancel and a child's finish can never leave an impossible state. Cancel is a flag, not a status.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint, select
from sqlalchemy.orm import Mapped, column_property, mapped_column

from imagerec.db import Base, utcnow
from imagerec.model_versions.models import ModelVersion


class TaskStatus(StrEnum):
    queued = "queued"  # waiting for the executor to claim it
    running = "running"  # a worker process owns it
    succeeded = "succeeded"  # finished; its result (a model, a dataset …) is registered
    failed = "failed"  # the work raised, or its process died; ``error`` says why
    cancelled = "cancelled"  # stopped on request; checkpoints are kept
    interrupted = "interrupted"  # its server stopped while it ran; can be resumed


FINISHED = (TaskStatus.succeeded, TaskStatus.failed, TaskStatus.cancelled)
ENDED = (*FINISHED, TaskStatus.interrupted)  # no process works on it any more
ACTIVE = (TaskStatus.queued, TaskStatus.running)
RESUMABLE = (TaskStatus.interrupted, TaskStatus.cancelled, TaskStatus.failed)


class TaskKind(StrEnum):
    training = "training"
    annotation = "annotation"  # batch pre-labelling
    evaluation = "evaluation"  # one or more models measured on a dataset split
    dataset_import = "dataset_import"  # a large dataset read, checked and registered
    labelstudio_training = "labelstudio_training"  # Label Studio's "Start training": annotations → model


class Task(Base):
    __tablename__ = "tasks"
    __table_args__ = (
        Index("ix_tasks_status_created", "status", "created_at"),
        {"sqlite_autoincrement": True},  # SQLite would otherwise hand a deleted max id out again
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    type: Mapped[str] = mapped_column(String(32))  # the mode within the kind, e.g. "regular"
    name: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default=TaskStatus.queued)
    params: Mapped[dict]
    cancel_requested: Mapped[bool] = mapped_column(default=False)
    resume_requested: Mapped[bool] = mapped_column(default=False)
    attempt: Mapped[int] = mapped_column(default=0)
    epoch: Mapped[int | None]
    total_epochs: Mapped[int | None]
    progress: Mapped[float] = mapped_column(default=0.0)  # 0..1
    eta_seconds: Mapped[float | None]
    latest_metrics: Mapped[dict | None]
    report: Mapped[dict | None]  # mode-specific result summary
    error: Mapped[str | None] = mapped_column(Text)
    run_dir: Mapped[str | None] = mapped_column(String(500))
    worker: Mapped[str | None] = mapped_column(String(200))  # executor kind and owner, e.g. "local:host:pid"
    worker_pid: Mapped[int | None]
    queue: Mapped[str | None] = mapped_column(String(64))  # the Celery queue it goes to; None: the default one
    message_id: Mapped[str | None] = mapped_column(String(64))  # the Celery message its running claim came from
    dispatched_at: Mapped[datetime | None]  # when the executor sent it out (a queued task never sent is resent)
    cancel_requested_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime | None]
    created_by: Mapped[str | None] = mapped_column(String(100))  # the name of the key that started it


# The model a task produced, derived rather than stored twice: ModelVersion.training_task_id points back. A deleted
# model (a tombstone) is no longer the task's model; a resumed task that registered again points at the new one.
Task.model_id = column_property(
    select(ModelVersion.id)
    .where(ModelVersion.training_task_id == Task.id, ModelVersion.deleted_at.is_(None))
    .order_by(ModelVersion.id.desc()).limit(1).scalar_subquery()
)


class TaskRef(Base):
    """A dataset or model a task reads: such a row may not be deleted while the task is queued or running."""

    __tablename__ = "task_refs"

    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True)
    ref_kind: Mapped[str] = mapped_column(String(16), primary_key=True)  # "dataset" | "model"
    ref_id: Mapped[int] = mapped_column(primary_key=True, index=True)
    role: Mapped[str] = mapped_column(String(32), primary_key=True)  # "dataset", "base_model", "teacher" …


class TaskLog(Base):
    __tablename__ = "task_logs"

    id: Mapped[int] = mapped_column(primary_key=True)  # the sequence number clients page with
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    level: Mapped[str] = mapped_column(String(8), default="info")
    message: Mapped[str] = mapped_column(Text)


class TaskMetric(Base):
    __tablename__ = "task_metrics"
    __table_args__ = (UniqueConstraint("task_id", "epoch"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    epoch: Mapped[int]
    values: Mapped[dict]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
