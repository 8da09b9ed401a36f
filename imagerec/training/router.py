from __future__ import annotations

from fastapi import APIRouter, status

from imagerec.deps import ExecutorDep, SessionDep, SettingsDep
from imagerec.tasks.schemas import TaskRead
from imagerec.training import service
from imagerec.training.schemas import TrainingMode, TrainingRequest

router = APIRouter()


@router.post("/regular", response_model=TaskRead, status_code=status.HTTP_202_ACCEPTED,
             summary="Start a regular training task")
def start_regular(request: TrainingRequest, session: SessionDep, settings: SettingsDep, executor: ExecutorDep):
    return service.start(session, settings=settings, executor=executor, mode=TrainingMode.regular, request=request)
