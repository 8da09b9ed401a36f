"""Which model serves a Label Studio project, kept per project in the database (``LabelStudioProject``).

The first ``/setup`` of a project binds it to a model: the one its ML backend's extra params name
(``{"model_id": 7}`` or ``{"model_version": "imagerec-model-7"}``), else the default model of the task its label
config implies. Later setups keep that binding; a ``model_version`` Label Studio sends (newer versions, or a user
who picked one) is honoured and becomes the binding; changed extra params naming another model rebind; and
``PUT /api/labelstudio/projects/{project}/model`` changes it from imagerec. A binding to a model that was deleted
or no longer fits falls back to the task's default. A setup that fails keeps its reason on the row
(``problem``), where ``GET /api/labelstudio/projects/{project}`` shows it: Label Studio shows only a status line.

Label Studio's predict calls name the project (``"<id>.<created>"``) but not their Label Studio, so a project
is found by its number; when two Label Studio instances both have that number, the one whose label config is
the request's, else the one set up last, is used.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from imagerec.db import utcnow
from imagerec.errors import Conflict, ImagerecError, NotFound, Unprocessable
from imagerec.labelstudio import repository
from imagerec.labelstudio.label_config import LabelConfig
from imagerec.labelstudio.models import LabelStudioProject
from imagerec.model_versions import repository as models_repository
from imagerec.model_versions.models import ModelVersion

VERSION_PREFIX = "imagerec-model-"


def model_version(model: ModelVersion) -> str:
    return f"{VERSION_PREFIX}{model.id}"


def model_id_of(version: object) -> int | None:
    text = str(version or "")
    number = text.removeprefix(VERSION_PREFIX)
    return int(number) if text.startswith(VERSION_PREFIX) and number.isdigit() else None


def project_number(project: str | None) -> int | None:
    """3 for Label Studio's ``"3.1718000000"``; None when it names no project."""
    head = str(project or "").partition(".")[0]
    return int(head) if head.isdigit() else None


def default_model(session: Session, *, task: str) -> ModelVersion:
    model = models_repository.get_default(session, task=task)
    if model is None:
        raise Unprocessable(
            f"this label config needs a {task} model, and no {task} model is marked default in imagerec: "
            f"mark one with POST /api/models/{{id}}/default (GET /api/models?task={task} lists them)"
        )
    return model


def _fitting(session: Session, model_id: int | None, task: str) -> ModelVersion | None:
    model = models_repository.get(session, model_id) if model_id is not None else None
    return model if model is not None and model.task == task else None


def _named_by(extra: dict | None) -> int | None:
    if not isinstance(extra, dict):
        return None
    named = extra.get("model_id")
    return named if type(named) is int else model_id_of(extra.get("model_version"))


def choose(session: Session, *, row: LabelStudioProject | None, config: LabelConfig,
           requested_version: str | None, extra_params: dict | None = None) -> ModelVersion:
    """The model for a project: requested, else named by changed extra params, else bound, else the default."""
    task = config.task.value
    candidates = [model_id_of(requested_version)]
    if row is None or _named_by(extra_params) != _named_by(row.extra_params):
        candidates.append(_named_by(extra_params))
    if row is not None:
        candidates.append(row.model_id)
    for model_id in candidates:
        model = _fitting(session, model_id, task)
        if model is not None:
            return model
    return default_model(session, task=task)


def for_setup(session: Session, *, url: str, project: int) -> LabelStudioProject | None:
    return repository.get_project(session, url=url, project=project)


def bind(session: Session, *, url: str, project: int, config: LabelConfig, label_config: str | None,
         model: ModelVersion, extra_params: dict | None) -> LabelStudioProject:
    row = repository.get_project(session, url=url, project=project) or LabelStudioProject(
        labelstudio_url=url, project=project)
    row.task, row.model_id, row.label_config = config.task.value, model.id, label_config
    if isinstance(extra_params, dict):
        row.extra_params = extra_params
    row.problem, row.problem_at = None, None
    row.updated_at = utcnow()
    repository.add(session, row)
    return row


def record_problem(session: Session, *, url: str, project: int, task: str | None, error: ImagerecError,
                   extra_params: dict | None) -> None:
    row = repository.get_project(session, url=url, project=project) or LabelStudioProject(
        labelstudio_url=url, project=project, task=task or "detect")
    row.problem, row.problem_at, row.updated_at = error.message, utcnow(), utcnow()
    if isinstance(extra_params, dict):
        row.extra_params = extra_params
    repository.add(session, row)


def for_predict(session: Session, *, project: str | None, label_config: str | None) -> LabelStudioProject | None:
    number = project_number(project)
    if number is None:
        return None
    rows = repository.projects_numbered(session, project=number)
    same_config = [row for row in rows if row.label_config == label_config]
    return (same_config or list(rows) or [None])[0]


def find(session: Session, *, project: int, url: str | None) -> LabelStudioProject:
    """One project row by number (and Label Studio URL when two instances share the number)."""
    rows: Sequence[LabelStudioProject] = repository.projects_numbered(session, project=project)
    if url is not None:
        rows = [row for row in rows if row.labelstudio_url == url]
    if not rows:
        raise NotFound(f"Label Studio project {project} has not been set up with imagerec (connect the model in "
                       "the project's settings first)")
    if len(rows) > 1:
        raise Conflict(f"{len(rows)} Label Studio instances have a project {project}: name one with ?url=",
                       details=[{"url": row.labelstudio_url} for row in rows])
    return rows[0]


def set_model(session: Session, *, row: LabelStudioProject, model_id: int) -> ModelVersion:
    model = models_repository.get(session, model_id)
    if model is None:
        raise NotFound(f"model {model_id} not found")
    if model.task != row.task:
        raise Unprocessable(f"model {model_id} is a {model.task} model; project {row.project}'s label config "
                            f"needs a {row.task} model")
    row.model_id, row.updated_at = model.id, utcnow()
    repository.add(session, row)
    return model
