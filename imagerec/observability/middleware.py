"""Pure ASGI middleware around every HTTP request: a request id, one log line, the request metrics.

Outermost, so it sees every answer (admission's 503s too) and times what the client waits for. Per request it
reads one header, wraps ``send`` to learn the status and add ``X-Request-ID``, and at the end does one dictionary
lookup, a counter increment, a histogram observe and one log call; nothing touches the database.

The route label is the matched route's template (``/api/tasks/{task_id}``), never the raw path: FastAPI leaves
the route in the scope. An answer given before routing (a 503 from admission, a 413 on a declared length) is
matched here, once, to find its template; no route at all is ``<unmatched>``. Unknown methods count as ``OTHER``.
A streamed answer (``…/logs/stream``) counts until its last byte. An error that escapes the app counts as 500
(Starlette's outer error middleware answers it).
"""

from __future__ import annotations

import logging
import time

from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from imagerec.observability.logs import NO_CALLER, LogFormat, line_fields, render, request_id_from, request_logger
from imagerec.observability.metrics import Metrics

UNMATCHED = "<unmatched>"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class RequestObserver:
    def __init__(self, app: ASGIApp, *, metrics: Metrics | None, log_format: LogFormat) -> None:
        self.app = app
        self.metrics = metrics
        self.log_format = log_format
        self.log = request_logger()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = request_id_from(scope["headers"])
        scope.setdefault("state", {})["request_id"] = request_id  # request.state.request_id, for handlers
        id_header = (b"x-request-id", request_id.encode("ascii"))
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), id_header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            self._observe(scope, request_id, status, time.perf_counter() - started)

    def _observe(self, scope: Scope, request_id: str, status: int, seconds: float) -> None:
        method = scope["method"] if scope["method"] in METHODS else "OTHER"
        route = route_template(scope)
        if self.metrics is not None:
            self.metrics.observe_request(method=method, route=route, status=status, seconds=seconds)
        level = logging.ERROR if status >= 500 else logging.INFO
        if self.log.isEnabledFor(level):
            caller = scope["state"].get("caller")
            client = scope.get("client")
            fields = line_fields(request_id=request_id, method=method, route=route, path=scope["path"],
                                 status=status, seconds=seconds, caller=getattr(caller, "name", NO_CALLER),
                                 client=client[0] if client else "-", level=level)
            self.log.log(level, render(fields, log_format=self.log_format))


def route_template(scope: Scope) -> str:
    route = scope.get("route")
    if route is None:
        route = _match(scope)
    return getattr(route, "path", UNMATCHED)


def _match(scope: Scope):
    """The route the router would pick (full match, else a method mismatch), for answers given before routing."""
    app = scope.get("app")
    partial = None
    for route in getattr(getattr(app, "router", None), "routes", ()):
        match, _ = route.matches(scope)
        if match == Match.FULL:
            return route
        if match == Match.PARTIAL and partial is None:
            partial = route
    return partial
