"""The one place a request's caller is decided, and the dependencies routes declare their scope with.

``get_caller`` reads ``Authorization: Bearer <key>`` (the ``/labelstudio`` paths also take the key as the
basic-auth password, which is what Label Studio's "Connect model" form sends) and answers 401 without a valid
key. ``require(scope, …)`` adds the scope check: 403 naming the scope needed and the ones the key has. With
``IMAGEREC_AUTH=off`` every request is the anonymous caller with every scope. The caller is kept on
``request.state.caller`` for the request log; a key's ``last_used_at`` is written at most once a minute.
Checked keys are remembered per process (``auth.cache``); a revocation still counts from the next request on.
"""

from __future__ import annotations

import base64
import binascii
import time

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from imagerec.auth import service
from imagerec.auth.cache import CheckedKeys
from imagerec.auth.scopes import Caller, Scope
from imagerec.db import BUSY_ERRORS, read_connection
from imagerec.errors import Forbidden, Unauthorized

ANONYMOUS = Caller(name="anonymous (IMAGEREC_AUTH=off)", scopes=frozenset(Scope))
BASIC_AUTH_PREFIXES = ("/labelstudio",)
TOUCH_EVERY_SECONDS = 60.0


def _presented_key(request: Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if scheme.lower() == "basic" and request.url.path.startswith(BASIC_AUTH_PREFIXES):
        try:
            _user, _, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return password or None
    return None


def _challenge(request: Request) -> dict[str, str]:
    basic = request.url.path.startswith(BASIC_AUTH_PREFIXES)
    return {"WWW-Authenticate": 'Basic realm="imagerec"' if basic else 'Bearer realm="imagerec"'}


def _identify(request: Request, presented: str) -> Caller | None:
    checked: CheckedKeys = request.app.state.checked_keys
    caller = checked.get(presented)
    if caller is not None:
        return caller
    with read_connection(request.app.state.engine) as connection:
        caller = service.identify(connection, settings=request.app.state.settings, presented=presented)
    if caller is not None:
        checked.put(presented, caller)
    return caller


def _touch_due(request: Request, caller: Caller) -> bool:
    """True (and noted) when the key's last use was last written a minute or more ago."""
    last_used = request.app.state.key_last_used
    now = time.monotonic()
    if caller.key_id is None or now - last_used.get(caller.key_id, -TOUCH_EVERY_SECONDS) < TOUCH_EVERY_SECONDS:
        return False
    last_used[caller.key_id] = now
    return True


def _touch(request: Request, caller: Caller) -> None:
    """Record the key's use; a busy database only delays it to a later request."""
    try:
        service.touch(request.app.state.session_factory, key_id=caller.key_id)
    except BUSY_ERRORS:
        request.app.state.key_last_used.pop(caller.key_id, None)


async def get_caller(request: Request) -> Caller:
    cached = getattr(request.state, "caller", None)
    if cached is not None:
        return cached
    if request.app.state.settings.auth == "off":
        caller = ANONYMOUS
    else:
        presented = _presented_key(request)
        if presented is None:
            raise Unauthorized("an API key is needed: send 'Authorization: Bearer <key>'", headers=_challenge(request))
        # On the event loop: a cache hit costs a stat, a miss one indexed read of a WAL database; either is cheaper
        # than a worker-thread hop, which waits for the GIL behind running inferences
        # (measured: benchmarks/auth_metrics_overhead.py).
        caller = _identify(request, presented)
        if caller is None:
            raise Unauthorized("the API key is not valid (unknown, revoked or expired)", headers=_challenge(request))
        if _touch_due(request, caller):
            await run_in_threadpool(_touch, request, caller)
    request.state.caller = caller
    return caller


def require(*scopes: Scope):
    """A dependency: the caller, who must hold at least one of ``scopes``."""

    async def check(caller: Caller = Depends(get_caller)) -> Caller:
        if not any(caller.may(scope) for scope in scopes):
            needed = " or ".join(f"'{scope}'" for scope in scopes)
            held = ", ".join(sorted(caller.scopes)) or "none"
            raise Forbidden(f"this needs the {needed} scope; key '{caller.name}' has: {held}",
                            details={"needed": list(scopes), "held": sorted(caller.scopes)})
        return caller

    return Depends(check)


def by_method(*, read: tuple[Scope, ...], write: tuple[Scope, ...]):
    """A router-wide dependency: ``read`` scopes for GET/HEAD/OPTIONS, ``write`` scopes for every other method."""
    read_check, write_check = require(*read).dependency, require(*write).dependency

    async def check(request: Request, caller: Caller = Depends(get_caller)) -> Caller:
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return await read_check(caller)
        return await write_check(caller)

    return Depends(check)
