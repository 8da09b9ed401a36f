"""Talking to one Label Studio as one of its users: the token, the header it goes in, and keeping it fresh.

Label Studio 1.23 issues two kinds of token:

- a **personal access token** (the default): a JWT refresh token. It is never sent as a credential itself: it is
  exchanged at ``POST /api/token/refresh {"refresh": <token>}`` for a short-lived access token, which goes in
  ``Authorization: Bearer <access>``. The access token is kept (per Label Studio URL and token) until a minute
  before its ``exp``, and exchanged again then, or at once when Label Studio answers 401;
- a **legacy token** (``--enable-legacy-api-token``): sent as it is, ``Authorization: Token <token>``.

A token is taken for a personal access token when it is a JWT whose payload says ``"token_type": "refresh"``.
``LabelStudioAuth`` is an ``httpx.Auth``: every request through a client that uses it carries the right header,
and a 401 is answered by one refresh and one retry. A refused token is logged once per URL and token until a
request succeeds again, so a wrong token gives one clear line, not one per image.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import threading
import time
from collections.abc import AsyncGenerator, Generator
from dataclasses import dataclass

import httpx

logger = logging.getLogger(__name__)

REFRESH_PATH = "/api/token/refresh"
DEFAULT_PORTS = {"http": 80, "https": 443}
EXPIRY_MARGIN_SECONDS = 60
REFRESH_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class Connection:
    """Where a Label Studio is and whose token imagerec uses there (from the database or the settings)."""

    url: str  # no trailing slash
    token: str | None
    id: int | None = None  # the registered connection's id; None for the one in the settings

    @property
    def token_kind(self) -> str:
        return token_kind(self.token) if self.token else "none"


def token_kind(token: str) -> str:
    """``"personal"`` for a personal access token (a JWT refresh token), else ``"legacy"``."""
    payload = _jwt_payload(token)
    return "personal" if payload is not None and payload.get("token_type") == "refresh" else "legacy"


def _jwt_payload(token: str) -> dict | None:
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        decoded = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, UnicodeDecodeError):
        return None
    return decoded if isinstance(decoded, dict) else None


class TokenRefused(Exception):
    """Label Studio did not exchange a personal access token (revoked, expired, or not one of its own)."""


@dataclass
class _Access:
    token: str
    expires_at: float


class _AccessCache:
    """Access tokens by (URL, hash of the personal token); shared by every request of this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: dict[tuple[str, str], _Access] = {}
        self._refused: set[tuple[str, str]] = set()

    def get(self, key: tuple[str, str]) -> str | None:
        with self._lock:
            access = self._tokens.get(key)
        return access.token if access is not None and access.expires_at > time.time() else None

    def put(self, key: tuple[str, str], token: str) -> None:
        payload = _jwt_payload(token) or {}
        expires = float(payload.get("exp", time.time() + 300)) - EXPIRY_MARGIN_SECONDS
        with self._lock:
            self._tokens[key] = _Access(token, expires)

    def drop(self, key: tuple[str, str]) -> None:
        with self._lock:
            self._tokens.pop(key, None)

    def first_refusal(self, key: tuple[str, str]) -> bool:
        """True the first time ``key`` is refused since it last worked (the one time it is logged)."""
        with self._lock:
            first = key not in self._refused
            self._refused.add(key)
        return first

    def accepted(self, key: tuple[str, str]) -> None:
        with self._lock:
            self._refused.discard(key)


ACCESS_TOKENS = _AccessCache()


class LabelStudioAuth(httpx.Auth):
    """The header a connection's token needs, refreshed as the module docstring says."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.kind = connection.token_kind
        self.key = (connection.url, hashlib.sha256((connection.token or "").encode()).hexdigest())

    # httpx reads every response a flow sees when ``requires_response_body``; an image must stay a stream (its
    # size is checked as it arrives), so only the refresh answers are read here, by these two drivers.
    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        flow = self._flow(request)
        outgoing, read_body = next(flow)
        while True:
            response = yield outgoing
            if read_body:
                response.read()
            try:
                outgoing, read_body = flow.send(response)
            except StopIteration:
                return

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        flow = self._flow(request)
        outgoing, read_body = next(flow)
        while True:
            response = yield outgoing
            if read_body:
                await response.aread()
            try:
                outgoing, read_body = flow.send(response)
            except StopIteration:
                return

    def _flow(self, request: httpx.Request) -> Generator[tuple[httpx.Request, bool], httpx.Response, None]:
        """Yields (request, whether its answer must be read) and is sent each answer."""
        if self.kind == "none" or not self._own(request.url):  # another host (a media host) never sees the token
            yield request, False
            return
        if self.kind == "legacy":
            request.headers["Authorization"] = f"Token {self.connection.token}"
            self._note((yield request, False))
            return
        access = ACCESS_TOKENS.get(self.key)
        if access is None:
            access = yield from self._refresh()
        request.headers["Authorization"] = f"Bearer {access}"
        response = yield request, False
        if response.status_code == 401:  # expired early, or revoked: exchange once more, try once more
            ACCESS_TOKENS.drop(self.key)
            request.headers["Authorization"] = f"Bearer {(yield from self._refresh())}"
            response = yield request, False
        self._note(response)

    def _refresh(self) -> Generator[tuple[httpx.Request, bool], httpx.Response, str]:
        response = yield httpx.Request("POST", f"{self.connection.url}{REFRESH_PATH}",
                                       json={"refresh": self.connection.token}), True
        access = _access_of(response)
        if access is None:
            self._log_refused(f"exchanging the personal access token at {REFRESH_PATH} answered "
                              f"{response.status_code}")
            raise TokenRefused(f"Label Studio at {self.connection.url} did not accept the personal access token "
                               f"({REFRESH_PATH} answered {response.status_code}): make a new one in Label Studio "
                               "(Account & Settings → Personal Access Token) and register it again")
        ACCESS_TOKENS.put(self.key, access)
        return access

    def _own(self, url: httpx.URL) -> bool:
        own = httpx.URL(self.connection.url)
        return (url.scheme, url.host, url.port or DEFAULT_PORTS.get(url.scheme)) == (
            own.scheme, own.host, own.port or DEFAULT_PORTS.get(own.scheme))

    def _note(self, response: httpx.Response) -> None:
        if response.status_code == 401:
            self._log_refused(f"{response.request.method} {response.request.url.path} answered 401")
        elif response.status_code < 400:
            ACCESS_TOKENS.accepted(self.key)

    def _log_refused(self, what: str) -> None:
        if ACCESS_TOKENS.first_refusal(self.key):
            logger.warning("Label Studio at %s refuses imagerec's %s token: %s (logged once until it works again)",
                           self.connection.url, self.kind, what)


def _access_of(response: httpx.Response) -> str | None:
    if response.status_code != 200:
        return None
    try:
        access = response.json().get("access")
    except (ValueError, AttributeError):
        return None
    return access if isinstance(access, str) else None


def async_client(connection: Connection | None, *, timeout: float) -> httpx.AsyncClient:
    """A client for ``connection``'s Label Studio; redirects are not followed (callers check each hop)."""
    auth = LabelStudioAuth(connection) if connection is not None else None
    return httpx.AsyncClient(timeout=timeout, follow_redirects=False, trust_env=False, auth=auth)


def sync_client(connection: Connection, *, timeout: float) -> httpx.Client:
    return httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False, auth=LabelStudioAuth(connection))
