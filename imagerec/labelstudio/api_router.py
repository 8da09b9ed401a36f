"""imagerec's own API for Label Studio, at ``/api/labelstudio``: the Label Studio instances it may talk to
(admin), and what it keeps per Label Studio project (its model, its extra params, its last setup problem)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from imagerec.auth.deps import require
from imagerec.auth.scopes import Scope
from imagerec.deps import CallerDep, SessionDep, SettingsDep
from imagerec.labelstudio import connections, projects
from imagerec.labelstudio.models import LabelStudioProject
from imagerec.labelstudio.schemas import ConnectionCreate, ConnectionRead, ProjectModelUpdate, ProjectRead

router = APIRouter()
ADMIN = [require(Scope.admin)]
UrlQuery = Annotated[str | None, Query(max_length=500, description="The Label Studio, when two share the number")]


@router.post("/connections", response_model=ConnectionRead, status_code=status.HTTP_201_CREATED,
             dependencies=ADMIN, summary="Register a Label Studio (its URL and imagerec's token there)")
def register_connection(body: ConnectionCreate, session: SessionDep, settings: SettingsDep, caller: CallerDep,
                        response: Response) -> ConnectionRead:
    row, created = connections.register(session, settings, url=body.url, token=body.token, created_by=caller.name)
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return ConnectionRead.model_validate(row)


@router.get("/connections", response_model=list[ConnectionRead], dependencies=ADMIN,
            summary="Registered Label Studio instances (tokens are never returned)")
def list_connections(session: SessionDep) -> list[ConnectionRead]:
    return [ConnectionRead.model_validate(row) for row in connections.list_connections(session)]


@router.delete("/connections/{connection_id}", status_code=status.HTTP_204_NO_CONTENT, dependencies=ADMIN,
               summary="Forget a Label Studio (its token is deleted)")
def delete_connection(connection_id: int, session: SessionDep) -> Response:
    connections.delete(session, connection_id=connection_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/projects/{project}", response_model=ProjectRead, dependencies=[require(Scope.read)],
            summary="A Label Studio project: its model, extra params and last setup problem")
def get_project(project: int, session: SessionDep, url: UrlQuery = None) -> ProjectRead:
    return _read(projects.find(session, project=project, url=_normal(url)))


@router.put("/projects/{project}/model", response_model=ProjectRead, dependencies=[require(Scope.train)],
            summary="Bind a Label Studio project to a model (Label Studio sees it at its next setup)")
def set_project_model(project: int, body: ProjectModelUpdate, session: SessionDep, url: UrlQuery = None,
                      ) -> ProjectRead:
    row = projects.find(session, project=project, url=_normal(url))
    projects.set_model(session, row=row, model_id=body.model_id)
    return _read(row)


def _normal(url: str | None) -> str | None:
    return connections.normal_url(url) if url else None


def _read(row: LabelStudioProject) -> ProjectRead:
    version = f"{projects.VERSION_PREFIX}{row.model_id}" if row.model_id is not None else None
    return ProjectRead.model_validate(row).model_copy(update={"model_version": version})
