"""Evaluation records: one model measured on one dataset split, and its per-image analysis.

An evaluation asked for over HTTP belongs to a task of kind ``evaluation`` (several models on the same images
share one task) and goes with it when that task is deleted; its status is the task's. A training's own final
validation is stored as an evaluation with ``source`` "training", no task, and status "succeeded". Results are
written once, by the child, in the same transaction that ends the task. A deleted (tombstoned) model or dataset
keeps its evaluations: their numbers stay readable, their overlays need the dataset's images.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Index, String, func, select
from sqlalchemy.orm import Mapped, column_property, mapped_column

from imagerec.db import Base, utcnow
from imagerec.model_versions.models import ModelVersion
from imagerec.tasks.models import Task


class Evaluation(Base):
    __tablename__ = "evaluations"
    __table_args__ = (
        Index("ix_evaluations_model_dataset", "model_id", "dataset_id", "split"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    dataset_id: Mapped[int | None] = mapped_column(ForeignKey("datasets.id", ondelete="SET NULL"))
    split: Mapped[str] = mapped_column(String(8))
    vision_task: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(16))  # "request" (POST /api/evaluations) | "training"
    params: Mapped[dict]  # conf, iou, imgsz, batch, device, analysis: what the numbers were measured with
    recorded_status: Mapped[str] = mapped_column(String(16))  # the status once no task stands behind it
    classes: Mapped[dict | None]  # common, model_only, dataset_only class names
    metrics: Mapped[dict | None]  # overall, per_class, confusion, curves, speed (see evaluation.results)
    label_issues: Mapped[list | None]
    images: Mapped[int | None]  # images evaluated
    files_dir: Mapped[str | None] = mapped_column(String(500))  # plots, relative to the data dir
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    created_by: Mapped[str | None] = mapped_column(String(100))


Evaluation.status = column_property(
    func.coalesce(select(Task.status).where(Task.id == Evaluation.task_id).scalar_subquery(),
                  Evaluation.recorded_status)
)

# A model's training evaluation (its final validation), derived: the newest one recorded for it.
ModelVersion.evaluation_id = column_property(
    select(Evaluation.id).where(Evaluation.model_id == ModelVersion.id, Evaluation.source == "training")
    .order_by(Evaluation.id.desc()).limit(1).scalar_subquery()
)


class EvaluationImage(Base):
    """One image's outcome at the evaluation's operating point: counts, worst error, and what was drawn."""

    __tablename__ = "evaluation_images"
    __table_args__ = (Index("ix_evaluation_images_errors", "evaluation_id", "errors"),)

    evaluation_id: Mapped[int] = mapped_column(ForeignKey("evaluations.id", ondelete="CASCADE"), primary_key=True)
    image_id: Mapped[int] = mapped_column(primary_key=True)  # its index in the evaluated split, sorted by name
    image: Mapped[str] = mapped_column(String(1000))  # path relative to the dataset's files folder
    tp: Mapped[int]
    fp: Mapped[int]
    fn: Mapped[int]
    wrong_class: Mapped[int]
    localisation: Mapped[int]
    errors: Mapped[int]
    score: Mapped[float] = mapped_column(Float)  # the highest confidence among its wrong predictions
    per_class: Mapped[dict]  # class name → the five counts
    detail: Mapped[dict]  # labels, predictions (above a floor), pairs: enough to draw the overlay
