"""Task endpoints. The same routes serve ``/api/tasks`` (every kind) and ``/api/training/tasks`` (training)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, status
from fastapi.responses import StreamingResponse

from imagerec.deps import CallerDep, ExecutorDep, SessionDep, SettingsDep
from imagerec.fields import MAX_DB_INT, AfterQuery, IdPath, OffsetQuery
from imagerec.tasks import repository, service
from imagerec.tasks.models import TaskStatus
from imagerec.tasks.schemas import EpochMetrics, TaskLogPage, TaskLogRead, TaskRead
from imagerec.tasks.stream import follow_logs


def make_router(kind: str | None) -> APIRouter:
    router = APIRouter()

    @router.get("", response_model=list[TaskRead], summary="List tasks, newest first")
    def list_tasks(
        session: SessionDep,
        status_: Annotated[TaskStatus | None, Query(alias="status")] = None,
        type_: Annotated[str | None, Query(alias="type", max_length=32)] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        offset: OffsetQuery = 0,
    ):
        return repository.list_tasks(session, kind=kind, status=status_, type_=type_, limit=limit, offset=offset)

    @router.get("/{task_id}", response_model=TaskRead)
    def get_task(task_id: IdPath, session: SessionDep):
        return service.get_or_404(session, task_id=task_id, kind=kind)

    @router.get("/{task_id}/logs", response_model=TaskLogPage, summary="Log lines after a sequence number")
    def get_logs(
        task_id: IdPath,
        session: SessionDep,
        after: AfterQuery = 0,
        limit: Annotated[int, Query(ge=1, le=5000)] = 500,
    ):
        task = service.get_or_404(session, task_id=task_id, kind=kind)
        lines = [TaskLogRead.model_validate(line) for line in repository.logs_after(
            session, task_id=task_id, after=after, limit=limit)]
        next_after = lines[-1].seq if lines else after
        return TaskLogPage(task_id=task_id, status=task.status, lines=lines, next_after=next_after)

    @router.get(
        "/{task_id}/logs/stream",
        summary="Follow the log live (Server-Sent Events); ends when the task ends",
        response_class=StreamingResponse,
    )
    def stream_logs(
        task_id: IdPath,
        request: Request,
        session: SessionDep,
        after: AfterQuery = 0,
        last_event_id: Annotated[int | None, Header(ge=0, le=MAX_DB_INT)] = None,
    ):
        service.get_or_404(session, task_id=task_id, kind=kind)
        start = last_event_id if last_event_id is not None else after
        events = follow_logs(request, task_id=task_id, after=start)
        return StreamingResponse(events, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    @router.get("/{task_id}/metrics", response_model=list[EpochMetrics], summary="One row per epoch")
    def get_metrics(task_id: IdPath, session: SessionDep):
        service.get_or_404(session, task_id=task_id, kind=kind)
        return repository.metrics(session, task_id=task_id)

    @router.post("/{task_id}/cancel", response_model=TaskRead)
    def cancel_task(task_id: IdPath, session: SessionDep, executor: ExecutorDep, caller: CallerDep):
        task = service.get_controlled(session, task_id=task_id, kind=kind, caller=caller)
        return service.cancel(session, executor=executor, task=task)

    @router.post("/{task_id}/resume", response_model=TaskRead, status_code=status.HTTP_202_ACCEPTED)
    def resume_task(task_id: IdPath, session: SessionDep, settings: SettingsDep, executor: ExecutorDep,
                    caller: CallerDep):
        task = service.get_controlled(session, task_id=task_id, kind=kind, caller=caller)
        return service.resume(session, settings=settings, executor=executor, task=task)

    @router.delete("/{task_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete a task and its artifacts")
    def delete_task(task_id: IdPath, session: SessionDep, settings: SettingsDep, caller: CallerDep):
        task = service.get_controlled(session, task_id=task_id, kind=kind, caller=caller)
        service.delete(session, settings=settings, task=task)

    return router
