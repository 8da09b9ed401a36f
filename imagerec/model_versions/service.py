"""The model registry: weights that a training produced, copied out of its run so they outlive the task."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

from sqlalchemy.orm import Session

from imagerec.config import Settings
from imagerec.db import on_commit
from imagerec.errors import Conflict, NotFound
from imagerec.model_versions import repository
from imagerec.model_versions.models import ModelVersion
from imagerec.tasks.repository import is_referenced_by_active_task

WEIGHTS_FILE = "best.pt"


def get_or_404(session: Session, *, model_id: int) -> ModelVersion:
    model = repository.get(session, model_id)
    if model is None:
        raise NotFound(f"model {model_id} not found")
    return model


def weights_file(settings: Settings, model: ModelVersion) -> Path:
    path = settings.data_dir / model.weights_path
    if not path.is_file():
        raise NotFound(f"the weights file of model {model.id} is missing on the server")
    return path


def store_weights(*, settings: Settings, source: Path) -> str:
    """Copy ``source`` into the registry (atomically); the relative path to record."""
    relative = Path("models") / uuid.uuid4().hex / WEIGHTS_FILE
    target = settings.data_dir / relative
    target.parent.mkdir(parents=True)
    partial = target.with_suffix(".partial")
    shutil.copyfile(source, partial)
    partial.replace(target)
    return relative.as_posix()


def register(session: Session, *, model: ModelVersion) -> ModelVersion:
    return repository.add(session, model=model)


def make_default(session: Session, *, model: ModelVersion) -> ModelVersion:
    repository.make_default(session, model=model)
    session.refresh(model)
    return model


def delete(session: Session, *, settings: Settings, model: ModelVersion) -> None:
    if is_referenced_by_active_task(session, ref_kind="model", ref_id=model.id):
        raise Conflict(f"model {model.id} is used by a queued or running task")
    folder = (settings.data_dir / model.weights_path).parent
    repository.remove(session, model=model)
    on_commit(session, lambda: shutil.rmtree(folder, ignore_errors=True))
