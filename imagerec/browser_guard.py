"""Keeps a web page from turning its visitor's browser against the server (DNS rebinding, cross-site requests).

A browser lets any page send requests to ``localhost``; what stops it from using this server is what the server
checks. Three checks run before every other middleware, so a refused request is not queued and its body is never
read:

1. **Host** (``allowed_hosts``). A request whose ``Host`` names another server (port ignored, IPv6 in brackets,
   case-insensitive) gets 400: a page on ``attacker.example`` whose name was re-pointed at 127.0.0.1 (DNS
   rebinding) still sends ``Host: attacker.example``. A missing, repeated or malformed ``Host`` gets 400 too.
   ``/health`` is checked like every path (a rebinding page could read it): monitors must call the server by an
   allowed name, e.g. ``http://127.0.0.1:8000/health``. ``'*'`` turns the check off.
2. **Origin on state-changing requests**. Any method but GET, HEAD and OPTIONS (and every WebSocket handshake)
   that carries an ``Origin`` is refused with 403 unless the origin is in ``cors_origins`` or is the server's own
   (scheme, host and port of the request). ``Origin: null`` (sandboxed frames, ``file:`` pages) is always
   refused. Requests without ``Origin`` (curl, scripts, Label Studio's server-to-server calls) pass: a browser
   always sends one on a cross-origin POST. Behind a TLS proxy, run uvicorn with ``--proxy-headers`` so the
   request's scheme is the one the browser used.
3. **CORS** (``cors_origins``; empty: off). A listed origin gets ``Access-Control-Allow-Origin`` on its answers
   and an answer to its preflight (the API's methods, ``Authorization`` and ``Content-Type``); any other origin
   gets no CORS header, so its browser may send a GET but not read the answer. ``'*'`` allows every origin
   without credentials; ``'*'`` together with ``allow_credentials`` is refused at start. API keys travel in the
   ``Authorization`` header, which needs no credentials mode, so the app leaves credentials off.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocketClose

Origin = tuple[str, str, int]  # scheme, host name, port

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CORS_METHODS = "GET, HEAD, POST, DELETE"  # every method the API's routes answer
CORS_REQUEST_HEADERS = "Authorization, Content-Type"
CORS_EXPOSED_HEADERS = "Content-Disposition, Retry-After, WWW-Authenticate"
PREFLIGHT_MAX_AGE_SECONDS = "600"
DEFAULT_PORTS = {"http": 80, "https": 443}
PAGE_SCHEMES = {"http": "http", "https": "https", "ws": "http", "wss": "https"}  # a WebSocket's page origin
ECHO_MAX_CHARS = 200
POLICY_VIOLATION = 1008  # WebSocket close code
WEBSOCKET_REASONS = {
    400: "host not allowed: see IMAGEREC_ALLOWED_HOSTS",
    403: "origin not allowed: see IMAGEREC_CORS_ORIGINS",
}


def split_host(value: str) -> tuple[str, int | None] | None:
    """``(name, port)`` from a Host value (``LocalHost:8000``, ``[::1]``), name lower case; None if malformed."""
    value = value.strip().lower()
    if value.startswith("["):
        name, bracket, rest = value[1:].partition("]")
        if not bracket or rest[:1] not in ("", ":"):
            return None
        port = rest[1:] if rest else None
    else:
        name, colon, port = value.partition(":")
        port = port if colon else None
    if port is not None and not (port.isdigit() and len(port) <= 5):
        return None
    name = name.rstrip(".")  # "localhost." is the same name
    return (name, None if port is None else int(port)) if name else None


def split_origin(value: str) -> Origin | None:
    """``(scheme, name, port)`` of an Origin value, the port filled in from the scheme; None if malformed."""
    scheme, separator, authority = value.strip().lower().partition("://")
    if not separator or scheme not in DEFAULT_PORTS or any(char in authority for char in "/?#@"):
        return None
    host = split_host(authority)
    if host is None:
        return None
    name, port = host
    return scheme, name, DEFAULT_PORTS[scheme] if port is None else port


def _allowed_host(entry: str) -> str:
    """An entry of ``allowed_hosts`` as a name: ``::1`` and ``[::1]`` alike, a port ignored."""
    host = split_host(f"[{entry}]" if entry.count(":") > 1 and "[" not in entry else entry)
    if host is None or "*" in entry:
        raise ValueError(f"allowed host {entry!r} is not a host name, an IP address or '*' (IMAGEREC_ALLOWED_HOSTS)")
    return host[0]


def _cors_origin(entry: str) -> Origin:
    origin = split_origin(entry.removesuffix("/"))
    if origin is None:
        raise ValueError(f"CORS origin {entry!r} is not scheme://host[:port] or '*' (IMAGEREC_CORS_ORIGINS)")
    return origin


def _echo(value: str) -> str:
    return repr(value[:ECHO_MAX_CHARS])


def _header(headers: Headers, name: str) -> str | None:
    """The header's value; a repeated one joined with commas, so it matches no host or origin."""
    values = headers.getlist(name)
    return ", ".join(values) if values else None


def _is_preflight(scope: Scope, headers: Headers) -> bool:
    return scope["type"] == "http" and scope["method"] == "OPTIONS" and "access-control-request-method" in headers


class BrowserGuard:
    def __init__(self, app: ASGIApp, *, allowed_hosts: Sequence[str], cors_origins: Sequence[str],
                 allow_credentials: bool = False) -> None:
        self.app = app
        self.any_host = "*" in allowed_hosts
        self.allowed_hosts = {_allowed_host(entry) for entry in allowed_hosts if entry != "*"}
        self.any_origin = "*" in cors_origins
        if self.any_origin and allow_credentials:
            raise ValueError("'*' in IMAGEREC_CORS_ORIGINS cannot be combined with credentials: list the origins")
        self.cors_origins = {_cors_origin(entry) for entry in cors_origins if entry != "*"}
        self.allow_credentials = allow_credentials

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        host, origin = _header(headers, "host"), _header(headers, "origin")
        refusal = self._refusal(scope, headers, host=host, origin=origin)
        if refusal is not None:
            await self._refuse(scope, receive, send, *refusal)
            return
        if scope["type"] == "http" and origin is not None and self._listed(origin):
            if _is_preflight(scope, headers):
                await self._preflight(origin)(scope, receive, send)
                return
            send = self._sending_cors_headers(send, origin)
        await self.app(scope, receive, send)

    def _refusal(self, scope: Scope, headers: Headers, *, host: str | None,
                 origin: str | None) -> tuple[int, str] | None:
        """``(status, detail)`` for a request the guard refuses, None for one it lets through."""
        host_name = None if host is None else split_host(host)
        if not (self.any_host or (host_name is not None and host_name[0] in self.allowed_hosts)):
            named = "a request without a Host header" if host is None else f"host {_echo(host)}"
            return 400, f"{named} is not allowed: this server answers only to the names in IMAGEREC_ALLOWED_HOSTS"
        if origin is None:
            return None
        changes_state = scope["type"] == "websocket" or scope["method"] not in SAFE_METHODS
        if (_is_preflight(scope, headers) and not self._listed(origin)
                or changes_state and not self._trusted(origin, scope, host_name)):
            return 403, (f"origin {_echo(origin)} may not send this request: add it to IMAGEREC_CORS_ORIGINS if "
                         "that web page should use this server")
        return None

    def _listed(self, origin: str) -> bool:
        return origin != "null" and (self.any_origin or split_origin(origin) in self.cors_origins)

    def _trusted(self, origin: str, scope: Scope, host: tuple[str, int | None] | None) -> bool:
        """A listed origin, or the server's own: the page was served by this scheme, host and port."""
        if self._listed(origin):
            return True
        if host is None or origin == "null":
            return False
        scheme = PAGE_SCHEMES.get(scope.get("scheme", "http"), "http")
        name, port = host
        return split_origin(origin) == (scheme, name, DEFAULT_PORTS[scheme] if port is None else port)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, status: int, detail: str) -> None:
        if scope["type"] == "websocket":  # closed before accept: the server answers the handshake with 403
            reason = WEBSOCKET_REASONS[status]  # a close reason has room for 123 bytes, not for the detail
            await WebSocketClose(code=POLICY_VIOLATION, reason=reason)(scope, receive, send)
            return
        await JSONResponse({"detail": detail}, status_code=status)(scope, receive, send)

    def _cors_headers(self, origin: str) -> dict[str, str]:
        if self.any_origin:
            return {"Access-Control-Allow-Origin": "*"}
        headers = {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
        if self.allow_credentials:
            headers["Access-Control-Allow-Credentials"] = "true"
        return headers

    def _preflight(self, origin: str) -> Response:
        return Response(status_code=200, headers=self._cors_headers(origin) | {
            "Access-Control-Allow-Methods": CORS_METHODS,
            "Access-Control-Allow-Headers": CORS_REQUEST_HEADERS,
            "Access-Control-Max-Age": PREFLIGHT_MAX_AGE_SECONDS,
        })

    def _sending_cors_headers(self, send: Send, origin: str) -> Send:
        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                response_headers = MutableHeaders(scope=message)
                for name, value in self._cors_headers(origin).items():
                    if name == "Vary":
                        response_headers.add_vary_header(value)
                    else:
                        response_headers[name] = value
                response_headers["Access-Control-Expose-Headers"] = CORS_EXPOSED_HEADERS
            await send(message)

        return send_with_cors
