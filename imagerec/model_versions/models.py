from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, false, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from imagerec.datasets.models import Dataset  # at run time: a child process may import only this module
from imagerec.db import Base, utcnow


class ModelVersion(Base):
    """Registered weights: what a succeeded training produced. ``weights_path`` is relative to the data dir.

    Deleting one leaves a tombstone (``deleted_at`` set, weights removed): the models fine-tuned from it keep
    ``parent_id`` and can still say what they came from. ``dataset`` and ``parent`` are loaded with the row,
    tombstones included, because they are its lineage.
    """

    __tablename__ = "model_versions"
    __table_args__ = (
        # at most one default model per task
        Index("uq_model_versions_default_task", "task", unique=True,
              sqlite_where=text("is_default"), postgresql_where=text("is_default")),
        {"sqlite_autoincrement": True},  # SQLite would otherwise hand a deleted max id out again
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
    deleted_at: Mapped[datetime | None]
    created_by: Mapped[str | None] = mapped_column(String(100))  # the name of the key that created it

    dataset: Mapped[Dataset | None] = relationship(lazy="selectin")
    parent: Mapped[ModelVersion | None] = relationship(remote_side=[id], lazy="selectin", join_depth=1)

    @property
    def deleted(self) -> bool:
        return self.deleted_at is not None
