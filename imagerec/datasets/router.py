from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Query, UploadFile, status

from imagerec.datasets import repository, service
from imagerec.datasets.schemas import DatasetDeleted, DatasetImport, DatasetName, DatasetRead
from imagerec.deps import CallerDep, DatasetDep, SessionDep, SettingsDep
from imagerec.fields import OffsetQuery
from imagerec.forms import OnlyDeclaredFormFields
from imagerec.vision import VisionTask

router = APIRouter()


@router.post("", response_model=DatasetRead, status_code=status.HTTP_201_CREATED, summary="Upload a dataset zip",
             dependencies=[OnlyDeclaredFormFields])
def upload_dataset(
    session: SessionDep,
    settings: SettingsDep,
    file: Annotated[UploadFile, File(description="A zip in the Ultralytics layout.")],
    name: Annotated[DatasetName, Form()],
    task: Annotated[VisionTask, Form()],
    caller: CallerDep,
):
    return service.register_upload(session=session, settings=settings, name=name, task=task, upload=file.file,
                                   created_by=caller.name)


@router.post(
    "/import-path",
    response_model=DatasetRead,
    status_code=status.HTTP_201_CREATED,
    summary="Register a folder on the server in place",
)
def import_dataset(body: DatasetImport, session: SessionDep, settings: SettingsDep, caller: CallerDep):
    return service.import_path(session=session, settings=settings, name=body.name, task=body.task, path=body.path,
                               created_by=caller.name)


@router.get("", response_model=list[DatasetRead], summary="Registered datasets, newest first")
def list_datasets(
    session: SessionDep,
    task: VisionTask | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: OffsetQuery = 0,
):
    return repository.list_datasets(session, task=task, limit=limit, offset=offset)


@router.get("/{dataset_id}", response_model=DatasetRead)
def get_dataset(dataset: DatasetDep):
    return dataset


@router.delete("/{dataset_id}", response_model=DatasetDeleted,
               summary="Delete a dataset's files; its record stays as the lineage of the models trained on it")
def delete_dataset(dataset: DatasetDep, session: SessionDep, settings: SettingsDep, caller: CallerDep):
    return service.delete(session=session, settings=settings, dataset=dataset, caller=caller)
