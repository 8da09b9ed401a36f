from __future__ import annotations

from fastapi import APIRouter, status

from imagerec.deps import CallerDep, ExecutorDep, SessionDep, SettingsDep
from imagerec.prelabel import service
from imagerec.prelabel.schemas import PrelabelRequest
from imagerec.tasks.schemas import TaskRead

router = APIRouter()


@router.post("", response_model=TaskRead, status_code=status.HTTP_202_ACCEPTED,
             summary="Pre-label a dataset or a server folder into a new dataset (a task)")
def start_job(request: PrelabelRequest, session: SessionDep, settings: SettingsDep, executor: ExecutorDep,
              caller: CallerDep):
    return service.start(session, settings=settings, executor=executor, request=request, created_by=caller.name)
