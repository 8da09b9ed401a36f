"""One log line per request, with its request id; never the key; text or JSON; in uvicorn's output."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest

from imagerec.app import create_app
from imagerec.observability.logs import LOGGER_NAME
from tests.helpers import ADMIN_KEY, api_client
from tests.observability.scrape import scrape
from tests.server_process import ServerProcess

FIELD = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)')
FRESH_ID = re.compile(r"[0-9a-f]{32}")
ADMIN_CALLER = "admin (IMAGEREC_ADMIN_KEY)"


@pytest.fixture
def request_log(caplog: pytest.LogCaptureFixture):
    """The request lines as they are written (the logger does not propagate: uvicorn's output gets them once)."""
    logger = logging.getLogger(LOGGER_NAME)
    caplog.set_level(logging.INFO, logger=LOGGER_NAME)
    logger.addHandler(caplog.handler)
    yield caplog
    logger.removeHandler(caplog.handler)


def text_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, str]]:
    """Each ``imagerec.requests`` line as its fields (quoted values unquoted), the time under ``time``."""
    lines = []
    for record in caplog.records:
        if record.name == LOGGER_NAME:
            stamp, _, rest = record.getMessage().partition(" ")
            fields = {key: json.loads(value) if value.startswith('"') else value for key, value in FIELD.findall(rest)}
            lines.append({"time": stamp, **fields})
    return lines


def test_a_request_logs_one_line_with_its_fields_and_keeps_a_valid_request_id(client, request_log) -> None:
    response = client.get("/api/tasks/5", headers={"X-Request-ID": "trace-42.a:b_c"})
    assert response.status_code == 404
    assert response.headers["x-request-id"] == "trace-42.a:b_c"

    (line,) = [each for each in text_lines(request_log) if each["request_id"] == "trace-42.a:b_c"]
    assert line["time"].startswith("20") and line["level"] == "info"
    assert (line["method"], line["route"], line["path"], line["status"]) == ("GET", "/api/tasks/{task_id}",
                                                                            "/api/tasks/5", "404")
    assert float(line["latency_ms"]) >= 0
    assert line["caller"] == ADMIN_CALLER


@pytest.mark.parametrize("given", ["has spaces", "x" * 65, "new\tline", "ü-utf8"])
def test_an_invalid_request_id_is_replaced_by_a_fresh_one(client, request_log, given: str) -> None:
    response = client.get("/health", headers={"X-Request-ID": given.encode()})
    returned = response.headers["x-request-id"]
    assert returned != given and FRESH_ID.fullmatch(returned)
    assert [line["request_id"] for line in text_lines(request_log)] == [returned]


def test_without_a_request_id_each_request_gets_its_own(client, request_log) -> None:
    ids = [client.get("/health").headers["x-request-id"] for _ in range(3)]
    assert len(set(ids)) == 3 and all(FRESH_ID.fullmatch(each) for each in ids)
    assert [line["request_id"] for line in text_lines(request_log)] == ids


def test_the_caller_is_named_and_no_key_ever_reaches_the_log(client, request_log) -> None:
    created = client.post("/api/keys", json={"name": "dashboard", "scopes": ["read"]})
    assert created.status_code == 201, created.text
    key = created.json()["key"]
    assert client.get("/api/models", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    wrong = "irk_not_a_real_key_0123456789"
    assert client.get("/api/models", headers={"Authorization": f"Bearer {wrong}"}).status_code == 401
    assert client.get("/health", headers={"Authorization": ""}).status_code == 200

    callers = [(line["route"], line["status"], line["caller"]) for line in text_lines(request_log)]
    assert callers == [("/api/keys", "201", ADMIN_CALLER), ("/api/models", "200", "dashboard"),
                       ("/api/models", "401", "-"), ("/health", "200", "-")]
    for secret in (key, wrong, ADMIN_KEY, "Bearer", "uthorization"):
        assert secret not in request_log.text


def test_a_path_cannot_forge_a_second_line(client, request_log) -> None:
    client.get("/nothing%0A2030-01-01T00:00:00Z level=info request_id=forged")
    (line,) = text_lines(request_log)
    assert line["route"] == "<unmatched>" and line["path"].startswith("/nothing\n")
    assert "\n" not in request_log.records[0].getMessage()


def test_json_format_writes_one_object_per_line(settings, request_log) -> None:
    with api_client(settings.model_copy(update={"log_format": "json"})) as client:
        request_id = client.get("/api/datasets/7", headers={"X-Request-ID": "json-1"}).headers["x-request-id"]
        client.get("/health")
    lines = [json.loads(record.getMessage()) for record in request_log.records if record.name == LOGGER_NAME]
    assert len(lines) == 2
    first = lines[0]
    assert set(first) == {"time", "level", "request_id", "method", "route", "path", "status", "latency_ms", "caller",
                          "client"}
    assert (first["request_id"], request_id) == ("json-1", "json-1")
    assert (first["method"], first["route"], first["path"], first["status"]) == (
        "GET", "/api/datasets/{dataset_id}", "/api/datasets/7", 404)
    assert isinstance(first["latency_ms"], float) and first["caller"] == ADMIN_CALLER
    assert lines[1]["route"] == "/health" and lines[1]["caller"] == "-"


def test_an_error_that_escapes_the_app_is_logged_and_counted_as_a_500(settings, request_log) -> None:
    app = create_app(settings)

    @app.get("/api/broken")
    def broken() -> None:
        raise RuntimeError("a bug")

    with api_client(app, raise_server_exceptions=False) as client:
        assert client.get("/api/broken").status_code == 500
        samples = scrape(client)
    (line,) = [each for each in text_lines(request_log) if each["path"] == "/api/broken"]
    assert (line["route"], line["status"], line["level"]) == ("/api/broken", "500", "error")
    assert samples.get("imagerec_http_requests_total", method="GET", route="/api/broken", status="500") == 1


def test_request_lines_show_up_in_uvicorn_output(tmp_path: Path) -> None:
    log_path = tmp_path / "server.log"
    with ServerProcess(tmp_path / "data", log_path) as server:
        assert server.client.get("/api/tasks/9", headers={"X-Request-ID": "from-uvicorn"}).status_code == 404
    (line,) = [each for each in log_path.read_text().splitlines() if "request_id=from-uvicorn" in each]
    assert "route=/api/tasks/{task_id}" in line and "status=404" in line and ADMIN_KEY not in line
