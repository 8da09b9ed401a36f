"""A web page cannot turn its visitor's browser against the server: foreign Host names (DNS rebinding) get 400,
state-changing requests from foreign origins get 403, and CORS answers only the configured origins."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.testclient import WebSocketDisconnect
from starlette.websockets import WebSocket

from imagerec.app import create_app
from imagerec.browser_guard import BrowserGuard
from imagerec.config import Settings
from imagerec.datasets.synthetic import write_dataset_zip

BASE_URL = "http://localhost:8000"
OWN_ORIGIN = "http://localhost:8000"
APP_ORIGIN = "http://app.example:3000"
EVIL_ORIGIN = "http://evil.example"
REFUSED_IF_UNGUARDED = "/api/training/regular"  # answers 422 to an empty body once past the guard
PREFLIGHT = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization,content-type"}


def guarded_client(tmp_path: Path, **settings) -> TestClient:
    defaults = {"data_dir": tmp_path / "data", "auth": "off", "allowed_hosts": ["localhost", "127.0.0.1", "::1"]}
    return TestClient(create_app(Settings(**defaults | settings)), base_url=BASE_URL)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with guarded_client(tmp_path) as test_client:
        yield test_client


@pytest.fixture
def cors_client(tmp_path: Path) -> Iterator[TestClient]:
    with guarded_client(tmp_path, cors_origins=[APP_ORIGIN]) as test_client:
        yield test_client


def cors_headers(response) -> dict[str, str]:
    return {name: value for name, value in response.headers.items() if name.startswith("access-control-")}


def upload(client: TestClient, archive: Path, **headers: str):
    with archive.open("rb") as handle:
        return client.post("/api/datasets", data={"name": "cats", "task": "detect"},
                           files={"file": (archive.name, handle, "application/zip")}, headers=headers)


# --- Host --------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("host", ["attacker.example", "localhost.attacker.example", "127.0.0.1.nip.io", "[::2]:8000",
                                  "localhost:8000:80", "[::1", ""])
def test_foreign_or_malformed_host_gets_400_naming_the_setting(client, host):
    response = client.get("/health", headers={"Host": host})
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert repr(host) in detail and "not allowed" in detail and "IMAGEREC_ALLOWED_HOSTS" in detail


@pytest.mark.parametrize("host", ["localhost", "LocalHost:8000", "localhost.", "127.0.0.1:1", "[::1]:8000", "[::1]"])
def test_allowed_host_any_case_any_port_ipv6_in_brackets(client, host):
    assert client.get("/health", headers={"Host": host}).status_code == 200


def test_request_from_a_foreign_host_changes_nothing(client, tmp_path):
    archive = write_dataset_zip("detect", tmp_path / "cats.zip", train=2, val=1)
    refused = upload(client, archive, Host="attacker.example")
    assert refused.status_code == 400
    assert client.get("/api/datasets").json() == []
    assert upload(client, archive).status_code == 201  # the same upload from an allowed host does register
    assert len(client.get("/api/datasets").json()) == 1


def test_foreign_host_is_refused_before_the_body_limit_reads_anything(tmp_path):
    with guarded_client(tmp_path, upload_max_bytes=1000) as small:
        oversized = {"Content-Length": str(10**12), "Content-Type": "multipart/form-data; boundary=b"}
        assert small.post("/api/datasets", content=b"", headers=oversized).status_code == 413
        foreign = small.post("/api/datasets", content=b"", headers=oversized | {"Host": "attacker.example"})
    assert foreign.status_code == 400 and "IMAGEREC_ALLOWED_HOSTS" in foreign.json()["detail"]


def test_missing_host_header_gets_400():
    reached = []

    async def app(scope, receive, send):
        reached.append(scope["path"])

    sent = []

    async def send(message):
        sent.append(message)

    async def receive():
        return {"type": "http.request", "body": b""}

    scope = {"type": "http", "method": "GET", "path": "/health", "scheme": "http", "headers": [], "query_string": b""}
    guard = BrowserGuard(app, allowed_hosts=["localhost"], cors_origins=[])
    asyncio.run(guard(scope, receive, send))
    assert sent[0]["status"] == 400 and b"without a Host header" in sent[1]["body"] and reached == []


def test_star_allows_any_host(tmp_path):
    with guarded_client(tmp_path, allowed_hosts=["*"]) as anywhere:
        assert anywhere.get("/health", headers={"Host": "attacker.example"}).status_code == 200


# --- Origin on state-changing requests ----------------------------------------------------------------------------

@pytest.mark.parametrize("origin", [EVIL_ORIGIN, "null", "https://localhost:8000", "http://localhost:3000",
                                    "http://127.0.0.1:8000", "http://localhost:8000.evil.example"])
def test_post_from_a_foreign_origin_gets_403_naming_origin_and_setting(client, origin):
    response = client.post(REFUSED_IF_UNGUARDED, json={}, headers={"Origin": origin})
    assert response.status_code == 403
    detail = response.json()["detail"]
    assert repr(origin) in detail and "IMAGEREC_CORS_ORIGINS" in detail


def test_delete_from_a_foreign_origin_gets_403(client):
    assert client.delete("/api/datasets/999").status_code == 404
    assert client.delete("/api/datasets/999", headers={"Origin": EVIL_ORIGIN}).status_code == 403


def test_foreign_origin_upload_registers_nothing(client, tmp_path):
    archive = write_dataset_zip("detect", tmp_path / "cats.zip", train=2, val=1)
    assert upload(client, archive, Origin=EVIL_ORIGIN).status_code == 403
    assert client.get("/api/datasets").json() == []


@pytest.mark.parametrize("origin", [None, OWN_ORIGIN, "HTTP://LOCALHOST:8000"])
def test_post_without_origin_or_from_the_own_origin_passes_the_guard(client, origin):
    headers = {} if origin is None else {"Origin": origin}
    assert client.post(REFUSED_IF_UNGUARDED, json={}, headers=headers).status_code == 422


def test_own_origin_on_the_default_port(tmp_path):
    with TestClient(create_app(Settings(data_dir=tmp_path / "data", auth="off", allowed_hosts=["localhost"])),
                    base_url="http://localhost") as default_port:
        own = default_port.post(REFUSED_IF_UNGUARDED, json={}, headers={"Origin": "http://localhost"})
        other_port = default_port.post(REFUSED_IF_UNGUARDED, json={}, headers={"Origin": "http://localhost:8080"})
    assert own.status_code == 422 and other_port.status_code == 403


def test_get_from_a_foreign_origin_passes_but_gets_no_cors_headers(client):
    response = client.get("/health", headers={"Origin": EVIL_ORIGIN})
    assert response.status_code == 200 and cors_headers(response) == {}


def test_websocket_from_a_foreign_origin_or_host_is_refused():
    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("hello")
        await websocket.close()

    app = BrowserGuard(Starlette(routes=[WebSocketRoute("/ws", echo)]), allowed_hosts=["localhost"], cors_origins=[])
    ws_client = TestClient(app)
    with ws_client.websocket_connect("ws://localhost/ws", headers={"Origin": "http://localhost"}) as own:
        assert own.receive_text() == "hello"
    with pytest.raises(WebSocketDisconnect) as refused, ws_client.websocket_connect(
            "ws://localhost/ws", headers={"Origin": EVIL_ORIGIN}):
        pass
    assert refused.value.code == 1008 and "IMAGEREC_CORS_ORIGINS" in refused.value.reason
    with pytest.raises(WebSocketDisconnect) as rebound, ws_client.websocket_connect("ws://attacker.example/ws"):
        pass
    assert "IMAGEREC_ALLOWED_HOSTS" in rebound.value.reason


# --- CORS -------------------------------------------------------------------------------------------------------

def test_cors_is_off_by_default(client):
    preflight = client.options(REFUSED_IF_UNGUARDED, headers=PREFLIGHT | {"Origin": APP_ORIGIN})
    assert preflight.status_code == 403 and cors_headers(preflight) == {}
    assert client.post(REFUSED_IF_UNGUARDED, json={}, headers={"Origin": APP_ORIGIN}).status_code == 403


def test_preflight_from_a_configured_origin_gets_cors_headers(cors_client):
    response = cors_client.options(REFUSED_IF_UNGUARDED, headers=PREFLIGHT | {"Origin": APP_ORIGIN})
    assert response.status_code == 200
    headers = cors_headers(response)
    assert headers["access-control-allow-origin"] == APP_ORIGIN
    assert {"Authorization", "Content-Type"} <= set(headers["access-control-allow-headers"].split(", "))
    assert {"GET", "POST", "DELETE"} <= set(headers["access-control-allow-methods"].split(", "))
    assert "access-control-allow-credentials" not in headers
    assert response.headers["vary"] == "Origin"


def test_preflight_from_another_origin_gets_no_cors_headers(cors_client):
    response = cors_client.options(REFUSED_IF_UNGUARDED, headers=PREFLIGHT | {"Origin": EVIL_ORIGIN})
    assert response.status_code == 403 and cors_headers(response) == {}


def test_configured_origin_may_post_and_read_the_answer(cors_client):
    response = cors_client.post(REFUSED_IF_UNGUARDED, json={}, headers={"Origin": APP_ORIGIN})
    assert response.status_code == 422  # past the guard, refused by validation
    assert response.headers["access-control-allow-origin"] == APP_ORIGIN
    assert "Retry-After" in response.headers["access-control-expose-headers"]
    read = cors_client.get("/health", headers={"Origin": APP_ORIGIN})
    assert read.headers["access-control-allow-origin"] == APP_ORIGIN and "Origin" in read.headers["vary"]
    assert cors_client.post(REFUSED_IF_UNGUARDED, json={}, headers={"Origin": EVIL_ORIGIN}).status_code == 403


def test_star_allows_any_origin_but_never_with_credentials(tmp_path):
    with guarded_client(tmp_path, cors_origins=["*"]) as anyone:
        preflight = anyone.options(REFUSED_IF_UNGUARDED, headers=PREFLIGHT | {"Origin": EVIL_ORIGIN})
        post = anyone.post(REFUSED_IF_UNGUARDED, json={}, headers={"Origin": EVIL_ORIGIN})
        null = anyone.post(REFUSED_IF_UNGUARDED, json={}, headers={"Origin": "null"})
    assert preflight.status_code == 200 and post.status_code == 422 and null.status_code == 403
    for response in (preflight, post):
        assert response.headers["access-control-allow-origin"] == "*"
        assert "access-control-allow-credentials" not in response.headers
    with pytest.raises(ValueError, match="credentials"):
        BrowserGuard(Starlette(), allowed_hosts=["localhost"], cors_origins=["*"], allow_credentials=True)


def test_credentials_only_for_listed_origins():
    async def ok(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    app = BrowserGuard(ok, allowed_hosts=["localhost"], cors_origins=[APP_ORIGIN], allow_credentials=True)
    response = TestClient(app, base_url="http://localhost").get("/", headers={"Origin": APP_ORIGIN})
    assert response.headers["access-control-allow-credentials"] == "true"
    assert response.headers["access-control-allow-origin"] == APP_ORIGIN


@pytest.mark.parametrize("setting", [{"cors_origins": ["app.example"]}, {"cors_origins": ["http://app.example/ui"]},
                                     {"allowed_hosts": ["*.example"]}])
def test_misconfigured_lists_are_refused_at_start(setting):
    with pytest.raises(ValueError, match="IMAGEREC_"):
        BrowserGuard(Starlette(), **{"allowed_hosts": ["localhost"], "cors_origins": []} | setting)
