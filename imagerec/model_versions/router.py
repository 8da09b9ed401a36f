from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Query, status
from fastapi.responses import FileResponse, JSONResponse

from imagerec.deps import CallerDep, ExecutorDep, SessionDep, SettingsDep
from imagerec.evaluation.promotion import Pending, guard_check
from imagerec.evaluation.schemas import PromotionRequest
from imagerec.fields import IdPath, OffsetQuery
from imagerec.model_versions import repository, service
from imagerec.model_versions.schemas import ModelDeleted, ModelRead, PromotedModel
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


@router.post("/{model_id}/default", response_model=PromotedModel,
             summary="Make this the model auto-annotation uses for its task (optionally guarded by an evaluation)",
             responses={202: {"description": "The guard's evaluations were queued: promote again once they end"},
                        409: {"description": "A class regressed beyond the guard's limit (the body has the "
                                             "comparison); send force: true to promote anyway"}})
def make_default(model_id: IdPath, session: SessionDep, settings: SettingsDep, executor: ExecutorDep,
                 caller: CallerDep, body: Annotated[PromotionRequest | None, Body()] = None):
    """Without a body the model is promoted at once. With `guard`, it is first compared with the current
    default on the guard's dataset split (evaluations that match are reused)."""
    model = service.get_or_404(session, model_id=model_id)
    verdict = None
    if body is not None:
        verdict = guard_check(session, settings=settings, executor=executor, model=model, request=body,
                              created_by=caller.name)
        if isinstance(verdict, Pending):
            return JSONResponse(status_code=status.HTTP_202_ACCEPTED, content={
                "promoted": False, "task_id": verdict.task_id, "evaluation_ids": verdict.evaluation_ids,
                "message": f"the guard needs evaluations; they were queued as task {verdict.task_id}: "
                           "send this request again once that task has succeeded"})
    promoted = PromotedModel.model_validate(service.make_default(session, model=model))
    promoted.promotion = verdict
    return promoted


@router.delete("/{model_id}", response_model=ModelDeleted,
               summary="Delete a model's weights; its record stays as the lineage of the models trained from it")
def delete_model(model_id: IdPath, session: SessionDep, settings: SettingsDep, caller: CallerDep):
    return service.delete(session, settings=settings, model=service.get_or_404(session, model_id=model_id),
                          caller=caller)
