from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from imagerec.db import Base, utcnow

LIVE = text("deleted_at IS NULL")


class Dataset(Base):
    """A validated dataset. Its files live under ``storage_path`` (relative to the data dir).

    It never changes: new or relabelled images make a new version, a new row with the same name, ``version`` one
    higher and ``parent_id`` naming the version it came from (``versions``); trainings and evaluations name the
    row, so they name the exact version they read.

    Deleting one leaves a tombstone: ``deleted_at`` is set and the files are removed, but the row stays, so the
    models trained on it still say what they learned from. Its name is free again, its id never is.
    """

    __tablename__ = "datasets"
    __table_args__ = (
        Index("uq_datasets_live_name", "name", "version", unique=True, sqlite_where=LIVE, postgresql_where=LIVE),
        {"sqlite_autoincrement": True},  # SQLite would otherwise hand a deleted max id out again
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    task: Mapped[str] = mapped_column(String(16))
    storage_path: Mapped[str] = mapped_column(String(500))
    source: Mapped[str] = mapped_column(String(16))  # "upload", "path" (import), "prelabel" or "labelstudio"
    source_path: Mapped[str | None] = mapped_column(String(1000))  # the imported folder, for "path"
    class_names: Mapped[list]
    kpt_shape: Mapped[list | None]
    flip_idx: Mapped[list | None]
    summary: Mapped[dict]  # per split: images, instances, backgrounds; plus warnings
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    deleted_at: Mapped[datetime | None]
    created_by: Mapped[str | None] = mapped_column(String(100))  # the name of the key that created it
    version: Mapped[int] = mapped_column(default=1, server_default="1")
    parent_id: Mapped[int | None]  # the version this one was made from
    content_hash: Mapped[str | None] = mapped_column(String(64))  # of every image and label, and the classes

    @property
    def deleted(self) -> bool:
        return self.deleted_at is not None
