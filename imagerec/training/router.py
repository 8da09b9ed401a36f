from __future__ import annotations

from fastapi import APIRouter, status

from imagerec.deps import ExecutorDep, SessionDep, SettingsDep
from imagerec.tasks.schemas import TaskRead
from imagerec.training import service
from imagerec.training.schemas import FreezeStrategyRequest, TrainingMode, TrainingRequest

router = APIRouter()


@router.post("/regular", response_model=TaskRead, status_code=status.HTTP_202_ACCEPTED,
             summary="Start a regular training task")
def start_regular(request: TrainingRequest, session: SessionDep, settings: SettingsDep, executor: ExecutorDep):
    return service.start(session, settings=settings, executor=executor, mode=TrainingMode.regular, request=request)


@router.post("/freeze-strategy", response_model=TaskRead, status_code=status.HTTP_202_ACCEPTED,
             summary="Start a staged-freezing fine-tuning task")
def start_freeze_strategy(request: FreezeStrategyRequest, session: SessionDep, settings: SettingsDep,
                          executor: ExecutorDep):
    """One continuous training whose frozen layers and learning rate change by stage, at epoch boundaries.

    Give `stages` (each `{epochs, freeze, lr_scale, freeze_bn_stats}`) or a `preset` ("head-then-all",
    "gradual") that splits `epochs`. Layer groups come from the model's YAML: backbone, neck (the head section
    but its last layer; empty for classify, where "backbone+neck" is the backbone) and head (the last layer).
    The 202 body's `report` shows the resolved stages and any `warnings` (e.g. freezing a randomly initialised
    model); each epoch's metrics carry its `stage`.
    """
    return service.start(session, settings=settings, executor=executor, mode=TrainingMode.freeze_strategy,
                         request=request)
