"""Typed errors that carry their HTTP status; one handler renders them all.

    ImagerecError (500)
    ├── BadRequest (400)        malformed input that pydantic could not catch (corrupt archive …)
    ├── Unauthorized (401)      no valid API key
    ├── Forbidden (403)         a path outside the allowed roots; a key without the scope; a feature switched off
    ├── NotFound (404)          a row or file that does not exist
    ├── Conflict (409)          an illegal state change: cancel a finished task, delete a dataset in use
    ├── PayloadTooLarge (413)   upload or archive over the configured limits
    ├── UnsupportedMedia (415)  not an image / not a zip
    └── Unprocessable (422)     well-formed but invalid: a dataset that fails validation, a task/model mismatch

Services raise these; they never build HTTP responses. ``details`` carries a structured report
(e.g. the list of problems found in a dataset, each naming a file and line).

Besides these, the handlers here turn two other failures into honest answers: a database that stays busy or
out of reach (503 with ``Retry-After``: the request changed nothing and can be sent again), and request
validation errors (422), whose echoed input is made JSON-safe (``inf``/``NaN`` as strings, long input cut).
No answer names an absolute server path: the data dir and the allowed roots are cut from every message.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from imagerec.db import BUSY_ERRORS, is_busy

log = logging.getLogger(__name__)
BUSY_RETRY_AFTER_SECONDS = 2
ECHO_MAX_CHARS = 200  # of a rejected input echoed back in a 422


class ImagerecError(Exception):
    status_code = 500

    def __init__(self, message: str, *, details: Any = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        self.headers = headers


class BadRequest(ImagerecError):
    status_code = 400


class Unauthorized(ImagerecError):
    status_code = 401


class Forbidden(ImagerecError):
    status_code = 403


class NotFound(ImagerecError):
    status_code = 404


class Conflict(ImagerecError):
    status_code = 409


class PayloadTooLarge(ImagerecError):
    status_code = 413


class UnsupportedMedia(ImagerecError):
    status_code = 415


class Unprocessable(ImagerecError):
    status_code = 422


def relative_paths(text: str, *, folders: list[Path]) -> str:
    """``text`` with every ``<folder>/`` prefix cut, so paths read relative to the data dir or an allowed root."""
    for folder in sorted({str(f).rstrip("/") for f in folders}, key=len, reverse=True):
        if folder:
            text = text.replace(folder + "/", "").replace(folder, ".")
    return text


def _server_folders(request: Request) -> list[Path]:
    settings = request.app.state.settings
    return [settings.data_dir, settings.pretrained_dir, *settings.allowed_roots]


def _json_safe(value: Any, folders: list[Path]) -> Any:
    """Non-finite floats as strings (JSON has no inf/NaN), long strings cut, server paths made relative."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, str):
        value = relative_paths(value, folders=folders)
        return value if len(value) <= ECHO_MAX_CHARS else value[:ECHO_MAX_CHARS] + "…"
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} bytes>"
    if isinstance(value, dict):
        return {str(key): _json_safe(item, folders) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item, folders) for item in value]
    return value


async def render_error(request: Request, error: ImagerecError) -> JSONResponse:
    folders = _server_folders(request)
    body: dict[str, Any] = {"detail": relative_paths(error.message, folders=folders)}
    if error.details is not None:
        body["errors"] = _json_safe(jsonable_encoder(error.details), folders)
    return JSONResponse(body, status_code=error.status_code, headers=error.headers)


async def _render_validation(request: Request, error: RequestValidationError) -> JSONResponse:
    errors = jsonable_encoder(error.errors(), custom_encoder={float: lambda x: x})
    return JSONResponse({"detail": _json_safe(errors, _server_folders(request))}, status_code=422)


async def _render_busy(_request: Request, error: Exception) -> JSONResponse:
    if not is_busy(error):
        log.error("database error", exc_info=error)
        return JSONResponse({"detail": "internal server error"}, status_code=500)
    log.warning("database busy, answered 503: %s", error)
    return JSONResponse(
        {"detail": "the database is busy; nothing was changed, retry shortly"},
        status_code=503, headers={"Retry-After": str(BUSY_RETRY_AFTER_SECONDS)},
    )


def install_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ImagerecError, render_error)
    app.add_exception_handler(RequestValidationError, _render_validation)
    for busy in BUSY_ERRORS:
        app.add_exception_handler(busy, _render_busy)
