from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Query, UploadFile, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.background import BackgroundTask
from starlette.responses import FileResponse, JSONResponse

from imagerec.datasets import archive, export, repository, service, versioning
from imagerec.datasets.formats import DatasetFormat
from imagerec.datasets.models import Dataset
from imagerec.datasets.schemas import DatasetDeleted, DatasetImport, DatasetName, DatasetRead, ImportChoice
from imagerec.deps import CallerDep, DatasetDep, ExecutorDep, SessionDep, SettingsDep
from imagerec.errors import Unprocessable
from imagerec.fields import MAX_DB_INT, OffsetQuery
from imagerec.forms import OnlyDeclaredFormFields
from imagerec.tasks.models import Task
from imagerec.tasks.schemas import TaskRead
from imagerec.vision import VisionTask

router = APIRouter()


def import_choice_form(
    format: Annotated[DatasetFormat | None, Form(description="Detected from the files when left out.")] = None,
    val_ratio: Annotated[float, Form()] = 0.2,
    test_ratio: Annotated[float, Form()] = 0.0,
    seed: Annotated[int, Form()] = 0,
    resplit: Annotated[bool, Form(description="Split every image anew, ignoring the source's splits.")] = False,
    kpt_shape: Annotated[str | None, Form(description="Pose: 'K,2' or 'K,3' when the format lacks it.")] = None,
    flip_idx: Annotated[str | None, Form(description="Pose: comma-separated permutation of 0..K-1.")] = None,
) -> ImportChoice:
    """The upload form's import options, checked by the same model as the JSON body's."""
    try:
        return ImportChoice(format=format, val_ratio=val_ratio, test_ratio=test_ratio, seed=seed, resplit=resplit,
                            kpt_shape=_int_list(kpt_shape, "kpt_shape"), flip_idx=_int_list(flip_idx, "flip_idx"))
    except ValidationError as error:
        raise RequestValidationError(
            [{**item, "loc": ("body", *item["loc"])} for item in error.errors(include_url=False, include_context=False)]
        ) from None


def _int_list(raw: str | None, field: str) -> list[int] | None:
    if raw is None or not raw.strip():
        return None
    try:
        return [int(part) for part in raw.strip().strip("[]").split(",")]
    except ValueError:
        raise RequestValidationError([{"type": "int_parsing", "loc": ("body", field),
                                       "msg": f"{field} must be comma-separated integers", "input": raw}]) from None


ImportChoiceForm = Annotated[ImportChoice, Depends(import_choice_form)]


LARGE_IMPORT = {202: {"model": TaskRead, "description": "A large import: a dataset_import task registers it "
                                                        "(see settings.dataset_import_task_min_images)"}}


def _created(result: Dataset | Task) -> Dataset | JSONResponse:
    if isinstance(result, Task):
        return JSONResponse(TaskRead.model_validate(result).model_dump(mode="json"),
                            status_code=status.HTTP_202_ACCEPTED)
    return result


@router.post("", response_model=DatasetRead, status_code=status.HTTP_201_CREATED, summary="Upload a dataset zip",
             dependencies=[OnlyDeclaredFormFields], responses=LARGE_IMPORT)
def upload_dataset(
    session: SessionDep,
    settings: SettingsDep,
    file: Annotated[UploadFile, File(description="A zip: YOLO, COCO, VOC, Label Studio JSON or image folders.")],
    name: Annotated[DatasetName, Form()],
    task: Annotated[VisionTask, Form()],
    choice: ImportChoiceForm,
    caller: CallerDep,
    executor: ExecutorDep,
):
    return _created(service.register_upload(session=session, settings=settings, name=name, task=task,
                                            upload=file.file, choice=choice, created_by=caller.name,
                                            executor=executor))


@router.post(
    "/import-path",
    response_model=DatasetRead,
    status_code=status.HTTP_201_CREATED,
    summary="Register a folder on the server in place",
    responses=LARGE_IMPORT,
)
def import_dataset(body: DatasetImport, session: SessionDep, settings: SettingsDep, caller: CallerDep,
                   executor: ExecutorDep):
    return _created(service.import_path(session=session, settings=settings, name=body.name, task=body.task,
                                        path=body.path, choice=body.choice(), created_by=caller.name,
                                        executor=executor))


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


@router.post("/{dataset_id}/versions", response_model=DatasetRead, status_code=status.HTTP_201_CREATED,
             summary="A new version: added or relabelled images (a zip or a server folder, any format), removals",
             dependencies=[OnlyDeclaredFormFields])
def create_version(
    dataset: DatasetDep,
    session: SessionDep,
    settings: SettingsDep,
    choice: ImportChoiceForm,
    caller: CallerDep,
    file: Annotated[UploadFile | None, File(description="Images and labels to add or relabel.")] = None,
    path: Annotated[str | None, Form(max_length=4096, description="A server folder instead of a zip.")] = None,
    remove: Annotated[list[str] | None, Form(description="Images to remove: split/name, or a unique file name.")]
    = None,
):
    if file is not None and path is not None:
        raise Unprocessable("give either a zip or a path, not both")
    return versioning.create_version(session=session, settings=settings, parent=dataset,
                                  upload=file.file if file is not None else None, path=path, remove=remove or [],
                                  choice=choice, created_by=caller.name)


@router.get("/{dataset_id}/diff", summary="What changed from another version: images and instances per class")
def diff(dataset: DatasetDep, session: SessionDep, settings: SettingsDep,
         from_: Annotated[int, Query(alias="from", ge=1, le=MAX_DB_INT, description="The dataset (version) id")]):
    return service.diff(session=session, settings=settings, dataset=dataset, from_id=from_)


@router.get("/{dataset_id}/stats", summary="Per split and class: images, instances, box sizes and shapes")
def get_stats(dataset: DatasetDep, settings: SettingsDep) -> dict:
    return {"id": dataset.id, "warnings": dataset.summary["warnings"], **service.read_stats(settings, dataset)}


@router.get("/{dataset_id}/export", response_class=FileResponse,
            summary="The dataset as a zip in a format that imports back here and into the tool it comes from",
            responses={200: {"content": {"application/zip": {}}}})
def export_dataset(dataset: DatasetDep, settings: SettingsDep,
                   format: Annotated[DatasetFormat, Query(description="yolo, coco, voc, labelstudio, imagefolder")]):
    zip_path = export.write_export(settings, dataset, files_dir=service.files_dir(settings, dataset), fmt=format)
    return FileResponse(zip_path, media_type="application/zip", filename=zip_path.name,
                        background=BackgroundTask(archive.remove_tree, zip_path.parent))


@router.delete("/{dataset_id}", response_model=DatasetDeleted,
               summary="Delete a dataset's files; its record stays as the lineage of the models trained on it")
def delete_dataset(dataset: DatasetDep, session: SessionDep, settings: SettingsDep, caller: CallerDep):
    return service.delete(session=session, settings=settings, dataset=dataset, caller=caller)
