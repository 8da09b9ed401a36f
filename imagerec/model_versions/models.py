from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, false, text
from sqlalchemy.orm import Mapped, mapped_column

from imagerec.db import Base, utcnow


class ModelVersion(Base):
    """Registered weights: what a succeeded training produced. ``weights_path`` is relative to the data dir."""

    __tablename__ = "model_versions"
    __table_args__ = (  # at most one default model per task
        Index("uq_model_versions_default_task", "task", unique=True,
              sqlite_where=text("is_default"), postgresql_where=text("is_default")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    task: Mapped[str] = mapped_column(String(16))
    architecture: Mapped[str] = mapped_column(String(100))
    class_names: Mapped[list]
    imgsz: Mapped[int]
    metrics: Mapped[dict]
    weights_path: Mapped[str] = mapped_column(String(500))
    training_mode: Mapped[str | None] = mapped_column(String(32))
    is_default: Mapped[bool] = mapped_column(default=False, server_default=false())  # auto-annotation's pick
    info: Mapped[dict] = mapped_column(default=dict)  # mode-specific record: schedule, teacher, class map …
    dataset_id: Mapped[int | None] = mapped_column(ForeignKey("datasets.id", ondelete="SET NULL"))
    training_task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id", ondelete="SET NULL"), index=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
