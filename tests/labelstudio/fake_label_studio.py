"""A stand-in for Label Studio's file serving: a real HTTP server on 127.0.0.1, in a thread.

It serves ``files`` (path with query → bytes) only to requests carrying ``Authorization: Token <token>`` (a
legacy token) or ``Authorization: Bearer <access>`` with an access token it issued for its personal access token
(``personal_token``, a JWT refresh token as Label Studio 1.23 makes them) at ``POST /api/token/refresh``;
``expire_access()`` makes every issued access token stale, as time does. It answers ``redirects`` (path →
Location) with 302, can be slow (``delay_seconds``), and records every request so tests can assert that a
refused host was never contacted.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def jwt(payload: dict) -> str:
    """An unsigned JWT of Label Studio's shape (imagerec reads only its payload)."""
    def part(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(payload)}.c2lnbmF0dXJl"


PERSONAL_TOKEN = jwt({"token_type": "refresh", "exp": 4102444800, "jti": "pat-1", "user_id": 1})


@dataclass
class Recorded:
    path: str
    authorization: str | None


@dataclass
class FakeLabelStudio:
    token: str = "secret-token"
    files: dict[str, bytes] = field(default_factory=dict)
    redirects: dict[str, str] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    delay_seconds: float = 0.0  # a slow Label Studio: each answer waits this long
    personal_token: str = PERSONAL_TOKEN
    issued: list[str] = field(default_factory=list)  # access tokens handed out, newest last
    valid_access: set[str] = field(default_factory=set)

    def expire_access(self) -> None:
        self.valid_access.clear()

    def authorised(self, authorization: str | None) -> bool:
        scheme, _, value = (authorization or "").partition(" ")
        return (scheme == "Token" and value == self.token) or (scheme == "Bearer" and value in self.valid_access)

    def __post_init__(self) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeLabelStudio:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def _handler_for(fake: FakeLabelStudio) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 — the stdlib's name
            authorization = self.headers.get("Authorization")
            fake.requests.append(Recorded(self.path, authorization))
            time.sleep(fake.delay_seconds)
            if self.path in fake.redirects:
                self._answer(302, b"", location=fake.redirects[self.path])
            elif not fake.authorised(authorization):
                self._answer(401, b'{"detail": "Authentication credentials were not provided."}')
            elif self.path in fake.files:
                self._answer(200, fake.files[self.path])
            else:
                self._answer(404, b'{"detail": "Not found."}')

        def do_POST(self) -> None:  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
            fake.requests.append(Recorded(self.path, self.headers.get("Authorization")))
            if self.path != "/api/token/refresh":
                self._answer(404, b'{"detail": "Not found."}')
            elif body.get("refresh") != fake.personal_token:
                self._answer(401, b'{"detail": "Token is invalid or expired", "code": "token_not_valid"}')
            else:
                access = jwt({"token_type": "access", "exp": int(time.time()) + 300, "n": len(fake.issued)})
                fake.issued.append(access)
                fake.valid_access.add(access)
                self._answer(200, json.dumps({"access": access}).encode())

        def _answer(self, status: int, body: bytes, location: str | None = None) -> None:
            self.send_response(status)
            if location:
                self.send_header("Location", location)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:  # keep test output quiet
            pass

    return Handler
