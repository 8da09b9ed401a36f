"""A training run's own files: what Ultralytics writes into ``<run dir>/train/`` (results.csv, args.yaml, the
plots), listed and served one by one.

Only files directly in that folder with a known suffix are served, by bare name. A name is resolved (symlinks
followed) and must still lie in the folder, so a link planted there cannot reach anything outside it. The routes
are mounted under ``/api/training/tasks`` beside the task routes, so reading them needs the read scope only.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter
from fastapi import Path as PathParam
from fastapi.responses import FileResponse
from pydantic import BaseModel

from imagerec.config import Settings
from imagerec.deps import SessionDep, SettingsDep
from imagerec.errors import NotFound
from imagerec.fields import IdPath
from imagerec.tasks import service as tasks_service
from imagerec.tasks.models import Task, TaskKind

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$"
MEDIA_TYPES = {"csv": "text/csv", "png": "image/png", "jpg": "image/jpeg", "yaml": "application/yaml"}
ArtifactName = Annotated[str, PathParam(pattern=NAME_PATTERN,
                                        description="A file name from the task's artifact list")]


class ArtifactRead(BaseModel):
    name: str
    size: int  # bytes
    kind: Literal["csv", "png", "jpg", "yaml"]


def _train_dir(settings: Settings, task: Task) -> Path | None:
    return settings.data_dir / task.run_dir / "train" if task.run_dir else None


def _servable(path: Path, folder: Path) -> bool:
    """A regular file with a known suffix that, symlinks resolved, is directly in ``folder``."""
    real = path.resolve()
    return (real.parent == folder.resolve() and real.is_file() and path.suffix[1:] in MEDIA_TYPES
            and real.suffix == path.suffix)


def list_artifacts(settings: Settings, task: Task) -> list[ArtifactRead]:
    folder = _train_dir(settings, task)
    if folder is None or not folder.is_dir():
        return []
    return [ArtifactRead(name=path.name, size=path.stat().st_size, kind=path.suffix[1:])
            for path in sorted(folder.iterdir()) if re.match(NAME_PATTERN, path.name) and _servable(path, folder)]


def artifact_file(settings: Settings, task: Task, name: str) -> Path:
    folder = _train_dir(settings, task)
    if folder is None or not _servable(folder / name, folder):
        raise NotFound(f"task {task.id} has no artifact '{name}'")
    return (folder / name).resolve()  # what was checked is what is served


router = APIRouter()


@router.get("/{task_id}/artifacts", response_model=list[ArtifactRead],
            summary="The training run's files: results.csv, args.yaml and the plots")
def get_artifacts(task_id: IdPath, session: SessionDep, settings: SettingsDep):
    """Files directly in the run's ``train/`` folder, by name; empty until Ultralytics has written any."""
    return list_artifacts(settings, tasks_service.get_or_404(session, task_id=task_id, kind=TaskKind.training))


@router.get("/{task_id}/artifacts/{name}", response_class=FileResponse, summary="Download one artifact")
def download_artifact(task_id: IdPath, name: ArtifactName, session: SessionDep, settings: SettingsDep):
    task = tasks_service.get_or_404(session, task_id=task_id, kind=TaskKind.training)
    path = artifact_file(settings, task, name)
    return FileResponse(path, media_type=MEDIA_TYPES[Path(name).suffix[1:]], filename=name,
                        content_disposition_type="inline")
