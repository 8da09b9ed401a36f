"""Typed errors that carry their HTTP status; one handler renders them all.

    ImagerecError (500)
    ├── BadRequest (400)        malformed input that pydantic could not catch (corrupt archive …)
    ├── Forbidden (403)         a path outside the allowed roots; a feature switched off
    ├── NotFound (404)          a row or file that does not exist
    ├── Conflict (409)          an illegal state change: cancel a finished task, delete a dataset in use
    ├── PayloadTooLarge (413)   upload or archive over the configured limits
    ├── UnsupportedMedia (415)  not an image / not a zip
    └── Unprocessable (422)     well-formed but invalid: a dataset that fails validation, a task/model mismatch

Services raise these; they never build HTTP responses. ``details`` carries a structured report
(e.g. the list of problems found in a dataset, each naming a file and line).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse


class ImagerecError(Exception):
    status_code = 500

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class BadRequest(ImagerecError):
    status_code = 400


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


async def _render(_request: Request, error: ImagerecError) -> JSONResponse:
    body: dict[str, Any] = {"detail": error.message}
    if error.details is not None:
        body["errors"] = error.details
    return JSONResponse(body, status_code=error.status_code)


def install_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ImagerecError, _render)
