"""Label Studio instances imagerec may talk to, and what it keeps per Label Studio project.

A **connection** is a Label Studio URL with the token imagerec uses there, encrypted at rest (``secrets``) and
never returned. A **project** row is one Label Studio project (by the URL of its Label Studio and its id): the
model it is bound to, the ML backend's extra params Label Studio sent, the last setup problem, and the state of
its training loop, so the backend keeps no per-project state in memory.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from imagerec.db import Base, utcnow


class LabelStudioConnection(Base):
    __tablename__ = "labelstudio_connections"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(500), unique=True)  # normalised: scheme://host[:port][/path]
    token_encrypted: Mapped[str] = mapped_column(Text)
    token_kind: Mapped[str] = mapped_column(String(16))  # "personal" or "legacy"
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(100))


class LabelStudioProject(Base):
    __tablename__ = "labelstudio_projects"
    __table_args__ = (UniqueConstraint("labelstudio_url", "project", name="uq_labelstudio_projects_url_project"),
                      {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(primary_key=True)
    labelstudio_url: Mapped[str] = mapped_column(String(500))  # "" when Label Studio named no hostname
    project: Mapped[int]
    task: Mapped[str] = mapped_column(String(16))  # the vision task its label config implies
    model_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id", ondelete="SET NULL"))
    extra_params: Mapped[dict] = mapped_column(default=dict)
    label_config: Mapped[str | None] = mapped_column(Text)
    problem: Mapped[str | None] = mapped_column(Text)  # why the last setup failed; None once one succeeds
    problem_at: Mapped[datetime | None]
    # the training loop (``labelstudio.loop``): the dataset its annotations became, the last training from Label
    # Studio and what was decided about its model, and the annotation events counted since
    dataset_id: Mapped[int | None] = mapped_column(ForeignKey("datasets.id", ondelete="SET NULL"))
    last_task_id: Mapped[int | None]
    decision: Mapped[dict | None]
    annotations_since_training: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
