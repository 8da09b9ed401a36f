"""Request ids and the request log line: one line per request on the ``imagerec.requests`` logger.

- A request keeps the client's ``X-Request-ID`` when it is 1–64 characters of ``A-Z a-z 0-9 . _ : -`` (so it is
  safe in a log line and cannot carry an injection); any other value is replaced by a fresh id.
- The line holds the request id, method, route template, path (never the query string), status, latency in ms,
  the caller's key name (``-`` when no key was resolved) and the client address. Never the key itself, nor any
  header: only ``request.state.caller.name`` is read.
- ``text``: ``<time> key=value …``, a value quoted (JSON string escapes) when it holds anything but plain
  characters, so a percent-encoded newline in a path cannot forge a second line. ``json``: one object per line.

The logger gets its own handler on stderr (uvicorn's output) unless a logging config already gave it one (then
that config decides where the lines go and at which level).
"""

from __future__ import annotations

import json
import logging
import re
import sys
import uuid
from datetime import UTC, datetime
from typing import Literal

LOGGER_NAME = "imagerec.requests"
REQUEST_ID_HEADER = b"x-request-id"
VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
PLAIN_VALUE = re.compile(r"[A-Za-z0-9._:/{}<>@+=-]+")
NO_CALLER = "-"

LogFormat = Literal["text", "json"]


def request_id_from(headers: list[tuple[bytes, bytes]]) -> str:
    """The client's valid ``X-Request-ID``, else a fresh one (32 hex characters)."""
    for name, value in headers:
        if name == REQUEST_ID_HEADER:
            text = value.decode("latin-1")
            if VALID_REQUEST_ID.fullmatch(text):
                return text
            break
    return uuid.uuid4().hex


def render(fields: dict[str, object], *, log_format: LogFormat) -> str:
    """One request's line; ``fields`` keep their order (time first)."""
    if log_format == "json":
        return json.dumps(fields, separators=(",", ":"))  # ASCII: no U+2028 splits a line
    stamp, *rest = fields.items()
    return " ".join([str(stamp[1]), *(f"{key}={_text_value(value)}" for key, value in rest)])


def line_fields(*, request_id: str, method: str, route: str, path: str, status: int, seconds: float,
                caller: str, client: str, level: int) -> dict[str, object]:
    return {
        "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "level": logging.getLevelName(level).lower(),
        "request_id": request_id,
        "method": method,
        "route": route,
        "path": path,
        "status": status,
        "latency_ms": round(seconds * 1000, 2),
        "caller": caller,
        "client": client,
    }


def request_logger() -> logging.Logger:
    """``imagerec.requests``, with a handler on stderr unless a logging config gave it one already."""
    logger = logging.getLogger(LOGGER_NAME)
    if not logger.handlers:
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))  # the line is complete: JSON must stay one object
        logger.addHandler(handler)
        logger.propagate = False  # the line is printed once, whatever the root logger has
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.INFO)
    return logger


class _StderrHandler(logging.StreamHandler):
    """Writes to the ``sys.stderr`` of the moment (as logging's last-resort handler does), not the one at set-up."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:  # StreamHandler.setStream assigns it; the stream stays sys.stderr
        pass


def _text_value(value: object) -> str:
    text = str(value)
    return text if PLAIN_VALUE.fullmatch(text) else json.dumps(text)
