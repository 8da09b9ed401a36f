"""``GET /metrics``: the Prometheus text format, for a key with the ``read`` scope."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4

from imagerec.auth.deps import require
from imagerec.auth.scopes import Scope

router = APIRouter(tags=["system"])


@router.get("/metrics", response_class=PlainTextResponse, dependencies=[require(Scope.read)],
            summary="Prometheus metrics: requests, tasks, training progress, executor, auto-annotation")
def metrics(request: Request) -> PlainTextResponse:  # a worker thread: the scrape reads the task table
    return PlainTextResponse(request.app.state.metrics.render(), media_type=CONTENT_TYPE_PLAIN_0_0_4)
