from __future__ import annotations

from fastapi import APIRouter

from imagerec.deps import ExecutorDep, SessionDep, SettingsDep
from imagerec.workers import service
from imagerec.workers.schemas import WorkerList

router = APIRouter()


@router.get("", response_model=WorkerList, summary="Live workers: host, queues, slots, running tasks, heartbeat")
def list_workers(session: SessionDep, settings: SettingsDep, executor: ExecutorDep) -> WorkerList:
    return service.list_live(session, settings=settings, executor=executor)
