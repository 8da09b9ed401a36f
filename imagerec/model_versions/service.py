"""The model registry: weights that a training produced, copied out of its run so they outlive the task.

Deleting a model leaves a tombstone: the row keeps its record (name, task, classes, lineage) with
``deleted_at`` set, the weights are removed once that commits. Every lookup that would use the weights sees
live models only; the models trained from it still point at the record (``parent``).
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy.orm import Session

from imagerec.auth.scopes import Caller, check_owner
from imagerec.config import Settings
from imagerec.datasets.models import Dataset
from imagerec.db import on_commit, utcnow
from imagerec.errors import Conflict, NotFound
from imagerec.model_versions import repository
from imagerec.model_versions.models import ModelVersion
from imagerec.model_versions.schemas import ModelDeleted
from imagerec.tasks.repository import is_referenced_by_active_task
from imagerec.training.schemas import TrainingMode

WEIGHTS_FILE = "best.pt"


def get_or_404(session: Session, *, model_id: int) -> ModelVersion:
    model = repository.get_record(session, model_id)
    if model is None:
        raise NotFound(f"model {model_id} not found")
    if model.deleted:
        raise NotFound(f"model {model_id} not found: it was deleted on {model.deleted_at:%Y-%m-%d %H:%M} UTC")
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


def discard_weights(*, settings: Settings, weights_path: str) -> None:
    """Remove weights stored by ``store_weights`` that no model row came to point at."""
    shutil.rmtree((settings.data_dir / weights_path).parent, ignore_errors=True)


def register(session: Session, *, model: ModelVersion) -> ModelVersion:
    return repository.add(session, model=model)


def make_default(session: Session, *, model: ModelVersion) -> ModelVersion:
    repository.make_default(session, model=model)
    session.refresh(model)
    return model


def delete(session: Session, *, settings: Settings, model: ModelVersion, caller: Caller | None = None) -> ModelDeleted:
    """Tombstone the row now and remove the weights once that has committed; 409 while a queued or running
    task reads it. The answer's notes say what the delete touched."""
    if caller is not None:
        check_owner(caller, created_by=model.created_by, what=f"model {model.id}")
    if is_referenced_by_active_task(session, ref_kind="model", ref_id=model.id):
        raise Conflict(f"model {model.id} is used by a queued or running task")
    notes = _model_delete_notes(session, model)
    folder = (settings.data_dir / model.weights_path).parent
    repository.mark_deleted(session, model=model, at=utcnow())
    on_commit(session, lambda: shutil.rmtree(folder, ignore_errors=True))
    return ModelDeleted(id=model.id, notes=notes)


def _model_delete_notes(session: Session, model: ModelVersion) -> list[str]:
    notes = []
    if model.is_default:
        notes.append(f"model {model.id} was the default model for {model.task}; {model.task} now has no default "
                     f"model (auto-annotation with task={model.task} will 404 until another model is made default)")
    children = repository.children(session, parent_id=model.id)
    if children:
        notes.append(f"{_models(children)} fine-tuned from this model; {_they(children)} its record "
                     "(name, task, classes) as lineage")
    return notes


def dataset_delete_notes(session: Session, *, dataset: Dataset) -> list[str]:
    """What deleting ``dataset`` does to the models: those trained on it, and those that replayed it."""
    notes = []
    trained = repository.trained_on(session, dataset_id=dataset.id)
    if trained:
        notes.append(f"{_models(trained)} trained on this dataset; {_they(trained)} its record "
                     "(name, task, classes) as lineage")
    incremental = repository.list_by_mode(session, task=dataset.task, training_mode=TrainingMode.incremental)
    replayed = [model.id for model in incremental
                if dataset.id in (model.info or {}).get("replay_sources", []) and model.id not in trained]
    if replayed:
        notes.append(f"{_models(replayed)} replayed its images in incremental training; an incremental "
                     "training from them will no longer replay them")
    return notes


def _models(ids: Sequence[int]) -> str:
    """``model 4 was`` / ``models 4, 7 were``."""
    if len(ids) == 1:
        return f"model {ids[0]} was"
    return f"models {', '.join(map(str, ids))} were"


def _they(ids: Sequence[int]) -> str:
    return "it keeps" if len(ids) == 1 else "they keep"
