"""Label Studio's ML-backend protocol, mounted at ``/labelstudio``: enter ``http://<host>:8000/labelstudio`` in a
project's Settings → Model → Connect model.

Label Studio waits 1 s for ``/health``, 3 s for ``/setup`` and 100 s for ``/predict``: health is answered on the
event loop with no database or model work, setup reads the label config and one row, and predict reads the
database in a short session of its own before fetching images and running the model (so that the SQLite
write lock is never held across inference).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, status
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from imagerec.db import read_session
from imagerec.deps import AnnotationRuntimeDep, SessionDep, SessionFactoryDep
from imagerec.labelstudio import service
from imagerec.labelstudio.schemas import (
    Health,
    NotAvailable,
    PredictRequest,
    PredictResponse,
    SetupRequest,
    SetupResponse,
    Versions,
)
from imagerec.vision import VisionTask

router = APIRouter()

TRAINING_NOT_AVAILABLE = (
    "training from Label Studio is not available yet: train in imagerec (POST /api/training/...) and mark the "
    "model default (POST /api/models/{id}/default); Label Studio then predicts with it"
)


@router.get("", response_model=Health, include_in_schema=False)
@router.get("/", response_model=Health, summary="Liveness for Label Studio (answers at once, always)")
@router.get("/health", response_model=Health, summary="Liveness for Label Studio (answers at once, always)")
async def health() -> Health:
    return service.health()


@router.post("/setup", response_model=SetupResponse, summary="Which model serves this label config")
def setup(request: SetupRequest, session: SessionDep) -> SetupResponse:
    return service.setup(session, request=request)


async def _plan(request: PredictRequest, session_factory: SessionFactoryDep) -> service.PredictionPlan:
    """Read what predict needs in a session of its own, closed before images are fetched or a model runs."""

    def read() -> service.PredictionPlan:
        with read_session(session_factory) as session:  # reads only: never waits for a writer's lock
            return service.plan_prediction(session, request=request)

    return await run_in_threadpool(read)


PlanDep = Annotated[service.PredictionPlan, Depends(_plan)]


@router.post("/predict", response_model=PredictResponse, summary="Pre-annotate Label Studio tasks")
async def predict(plan: PlanDep, runtime: AnnotationRuntimeDep) -> PredictResponse:
    return await service.predict(plan=plan, runtime=runtime)


@router.get("/versions", response_model=Versions, summary="Version strings of the registered models")
@router.post("/versions", response_model=Versions, include_in_schema=False)  # older backends' verb
def versions(session: SessionDep, task: VisionTask | None = None) -> Versions:
    return service.versions(session, task=task)


@router.get("/metrics", summary="Label Studio polls this; imagerec reports no metrics here")
async def metrics() -> dict:
    return {}


@router.post("/webhook", response_model=NotAvailable, summary="Annotation events: acknowledged, not acted on")
async def webhook() -> NotAvailable:
    # Label Studio fires this on every annotation; an error status would only fill its webhook log.
    return NotAvailable(status="ignored", detail=TRAINING_NOT_AVAILABLE)


@router.post("/train", status_code=status.HTTP_501_NOT_IMPLEMENTED, response_model=NotAvailable,
             summary="Legacy 'Start training' button: not available yet")
async def train() -> JSONResponse:
    body = NotAvailable(status="not_available", detail=TRAINING_NOT_AVAILABLE)
    return JSONResponse(body.model_dump(), status_code=status.HTTP_501_NOT_IMPLEMENTED)
