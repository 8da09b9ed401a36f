"""Label Studio's ML-backend protocol, mounted at ``/labelstudio``: enter ``http://<host>:8000/labelstudio`` in a
project's Settings → Model → Connect model.

Label Studio waits 1 s for ``/health``, 3 s for ``/setup`` and 100 s for ``/predict``: health is answered on the
event loop with no database or model work, setup reads the label config and one row, and predict reads the
database in a short session of its own before fetching images and running the model (so that the SQLite
write lock is never held across inference).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from imagerec.db import read_session, unit_of_work
from imagerec.deps import AnnotationRuntimeDep, ExecutorDep, SessionDep, SessionFactoryDep, SettingsDep
from imagerec.errors import render_error
from imagerec.labelstudio import service
from imagerec.labelstudio.schemas import (
    Health,
    LegacyTrainRequest,
    PredictRequest,
    PredictResponse,
    SetupRequest,
    SetupResponse,
    TrainingAnswer,
    Versions,
    WebhookEvent,
)
from imagerec.vision import VisionTask

router = APIRouter()

@router.get("", response_model=Health, include_in_schema=False)
@router.get("/", response_model=Health, summary="Liveness for Label Studio (answers at once, always)")
@router.get("/health", response_model=Health, summary="Liveness for Label Studio (answers at once, always)")
async def health() -> Health:
    return service.health()


@router.post("/setup", response_model=SetupResponse, summary="Which model serves this project")
async def setup(body: SetupRequest, request: Request, session_factory: SessionFactoryDep,
                settings: SettingsDep) -> SetupResponse | JSONResponse:
    return await _committed(request, session_factory, lambda session: service.setup(session, settings,
                                                                                    request=body))


async def _plan(request: PredictRequest, session_factory: SessionFactoryDep,
                settings: SettingsDep) -> service.PredictionPlan:
    """Read what predict needs in a session of its own, closed before images are fetched or a model runs."""

    def read() -> service.PredictionPlan:
        with read_session(session_factory) as session:  # reads only: never waits for a writer's lock
            return service.plan_prediction(session, settings, request=request)

    return await run_in_threadpool(read)


PlanDep = Annotated[service.PredictionPlan, Depends(_plan)]


@router.post("/predict", response_model=PredictResponse, summary="Pre-annotate Label Studio tasks")
async def predict(plan: PlanDep, runtime: AnnotationRuntimeDep) -> PredictResponse:
    return await service.predict(plan=plan, runtime=runtime)


@router.get("/versions", response_model=Versions, summary="Version strings of the models that can serve a project")
@router.post("/versions", response_model=Versions, include_in_schema=False)  # older backends' verb
def versions(request: Request, session: SessionDep, task: VisionTask | None = None,
             project: Annotated[int | None, Query(ge=1, description="Only models that fit this project")] = None,
             ) -> Versions:
    """Label Studio's GET names no project: connect the backend as ``…/labelstudio/projects/<id>`` (the same
    protocol under that path) to have its versions filtered for that project."""
    scoped = request.path_params.get("ls_project")
    return service.versions(session, task=task, project=int(scoped) if scoped is not None else project)


@router.get("/metrics", summary="Label Studio polls this; imagerec reports no metrics here")
async def metrics() -> dict:
    return {}


@router.post("/webhook", response_model=TrainingAnswer, summary="Label Studio events: Start training, annotations")
async def webhook(body: WebhookEvent, request: Request, session_factory: SessionFactoryDep, settings: SettingsDep,
                  executor: ExecutorDep) -> TrainingAnswer | JSONResponse:
    """``START_TRAINING`` queues a training from the project's annotations (``labelstudio.loop``) and answers at
    once; ``ANNOTATION_CREATED``/``ANNOTATION_UPDATED`` count towards ``IMAGEREC_LABELSTUDIO_TRAIN_EVERY``; other
    events are acknowledged."""
    return await _committed(request, session_factory, lambda session: service.webhook(
        session, settings=settings, executor=executor, event=body))


@router.post("/train", response_model=TrainingAnswer, summary="Legacy 'Start training': the same as START_TRAINING")
async def train(body: LegacyTrainRequest, request: Request, session_factory: SessionFactoryDep,
                settings: SettingsDep, executor: ExecutorDep) -> TrainingAnswer | JSONResponse:
    return await _committed(request, session_factory, lambda session: service.start_training(
        session, settings=settings, executor=executor, project=body.project, reason="Label Studio's /train"))


async def _committed(request: Request, session_factory, work):
    """``work`` in a unit of work that commits even when it refuses (the reason is kept on the project)."""
    def run():
        with unit_of_work(session_factory) as session:
            return work(session)

    outcome = await run_in_threadpool(run)
    return await render_error(request, outcome.error) if isinstance(outcome, service.Refused) else outcome
