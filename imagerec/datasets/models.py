from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from imagerec.db import Base, utcnow


class Dataset(Base):
    """A validated dataset. Its files live under ``storage_path`` (relative to the data dir)."""

    __tablename__ = "datasets"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    task: Mapped[str] = mapped_column(String(16))
    storage_path: Mapped[str] = mapped_column(String(500))
    source: Mapped[str] = mapped_column(String(16))  # "upload", "path" (import) or "prelabel" (a job made it)
    source_path: Mapped[str | None] = mapped_column(String(1000))  # the imported folder, for "path"
    class_names: Mapped[list]
    kpt_shape: Mapped[list | None]
    flip_idx: Mapped[list | None]
    summary: Mapped[dict]  # per split: images, instances, backgrounds; plus warnings
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
