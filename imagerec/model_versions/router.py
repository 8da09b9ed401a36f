from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse

from imagerec.deps import CallerDep, SessionDep, SettingsDep
from imagerec.fields import IdPath, OffsetQuery
from imagerec.model_versions import repository, service
from imagerec.model_versions.schemas import ModelDeleted, ModelRead
from imagerec.vision import VisionTask

router = APIRouter()


@router.get("", response_model=list[ModelRead], summary="Registered models, newest first")
def list_models(
    session: SessionDep,
    task: VisionTask | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: OffsetQuery = 0,
):
    return repository.list_models(session, task=task, limit=limit, offset=offset)


@router.get("/{model_id}", response_model=ModelRead)
def get_model(model_id: IdPath, session: SessionDep):
    return service.get_or_404(session, model_id=model_id)


@router.get("/{model_id}/weights", response_class=FileResponse, summary="Download the weights (best.pt)")
def download_weights(model_id: IdPath, session: SessionDep, settings: SettingsDep):
    model = service.get_or_404(session, model_id=model_id)
    path = service.weights_file(settings, model)
    return FileResponse(path, media_type="application/octet-stream", filename=f"model-{model.id}-{path.name}")


@router.post("/{model_id}/default", response_model=ModelRead,
             summary="Make this the model auto-annotation uses for its task")
def make_default(model_id: IdPath, session: SessionDep):
    return service.make_default(session, model=service.get_or_404(session, model_id=model_id))


@router.delete("/{model_id}", response_model=ModelDeleted,
               summary="Delete a model's weights; its record stays as the lineage of the models trained from it")
def delete_model(model_id: IdPath, session: SessionDep, settings: SettingsDep, caller: CallerDep):
    return service.delete(session, settings=settings, model=service.get_or_404(session, model_id=model_id),
                          caller=caller)
