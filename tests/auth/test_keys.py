"""API keys over HTTP: every route but the open ones needs one, scopes, key lifecycle, basic auth for Label
Studio, the bootstrap admin key file, and who may stop or delete whose work."""

from __future__ import annotations

import base64
import logging
import os
import re
import stat
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from imagerec.app import create_app
from imagerec.auth import repository
from imagerec.config import Settings
from tests.databases import stored_text
from tests.helpers import ADMIN_KEY, AUTH, BASE_URL, api_client, register_dataset, tiny_training

pytestmark = pytest.mark.both_databases

OPEN = {("GET", "/health"), ("GET", "/docs"), ("GET", "/redoc"), ("GET", "/openapi.json")}


def _anonymous(app) -> TestClient:
    return TestClient(app, base_url=BASE_URL)


def _key(client: TestClient, name: str, *scopes: str, **extra) -> dict:
    response = client.post("/api/keys", json={"name": name, "scopes": list(scopes), **extra})
    assert response.status_code == 201, response.text
    return response.json()


def _as(key: dict) -> dict:
    return {"Authorization": f"Bearer {key['key']}"}


def test_every_route_but_the_open_ones_answers_401_without_a_key(client):
    anonymous = _anonymous(client.app)
    checked = 0
    for path, operations in client.app.openapi()["paths"].items():
        for method in operations:
            if (method.upper(), path) in OPEN:
                continue
            url = re.sub(r"\{[^}]+\}", "1", path)
            response = anonymous.request(method.upper(), url)
            assert response.status_code == 401, (method, path, response.status_code, response.text)
            assert "API key" in response.json()["detail"]
            checked += 1
    assert checked >= 40
    assert anonymous.get("/health").status_code == 200


def test_health_stays_open_and_says_nothing_sensitive(client):
    body = _anonymous(client.app).get("/health").text
    assert ADMIN_KEY not in body and "key" not in body.lower()


@pytest.mark.parametrize("scopes, allowed, refused", [
    (["read"], [("GET", "/api/datasets"), ("GET", "/api/models"), ("GET", "/api/tasks")],
     [("POST", "/api/training/regular"), ("POST", "/api/auto_annotate"), ("GET", "/api/keys")]),
    (["annotate"], [("GET", "/api/annotation/jobs"), ("POST", "/labelstudio/setup")],
     [("GET", "/api/datasets"), ("POST", "/api/training/regular"), ("GET", "/api/keys")]),
    (["train"], [("GET", "/api/datasets"), ("POST", "/api/training/regular")],
     [("POST", "/api/auto_annotate"), ("GET", "/api/keys")]),
])
def test_scopes_grant_what_they_say(client, scopes, allowed, refused):
    headers = _as(_key(client, "-".join(scopes), *scopes))
    for method, url in allowed:
        response = client.request(method, url, headers=headers, json={})
        assert response.status_code not in (401, 403), (method, url, response.text)
    for method, url in refused:
        response = client.request(method, url, headers=headers, json={})
        assert response.status_code == 403, (method, url, response.text)
        assert "scope" in response.json()["detail"]


def test_a_key_is_shown_once_stored_as_a_hash_and_revoked_at_once(client, settings):
    created = _key(client, "ci", "train")
    assert created["key"].startswith("irk_")
    listed = client.get("/api/keys").json()
    assert all("key" not in row for row in listed) and created["key"] not in str(listed)
    assert created["key"] not in stored_text(settings, "api_keys")
    headers = _as(created)
    assert client.get("/api/datasets", headers=headers).status_code == 200
    assert next(row for row in client.get("/api/keys").json() if row["name"] == "ci")["last_used_at"]
    assert client.delete(f"/api/keys/{created['id']}").json()["revoked_at"]
    assert client.get("/api/datasets", headers=headers).status_code == 401


def test_an_expired_key_is_refused_from_its_expiry_on_even_after_it_was_checked(client):
    soon = datetime.now(UTC) + timedelta(seconds=1.5)
    key = _key(client, "short", "read", expires_at=soon.isoformat())
    past = _key(client, "past", "read", expires_at=(datetime.now(UTC) - timedelta(seconds=1)).isoformat())
    assert client.get("/api/datasets", headers=_as(past)).status_code == 401
    assert client.get("/api/datasets", headers=_as(key)).status_code == 200  # checked, and remembered
    time.sleep(max(0.0, (soon - datetime.now(UTC)).total_seconds()) + 0.05)
    assert client.get("/api/datasets", headers=_as(key)).status_code == 401


def _keys_cli(settings, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "IMAGEREC_DATA_DIR": str(settings.data_dir)} | (
        {"IMAGEREC_DATABASE_URL": settings.database_url} if settings.database_url else {})
    return subprocess.run([sys.executable, "-m", "imagerec", "keys", *args], env=env, capture_output=True,
                          text=True, timeout=60, check=True)


def test_a_key_revoked_from_the_shell_is_refused_by_the_running_server_at_its_next_request(client, settings):
    created = _keys_cli(settings, "create", "--name", "shell-made", "--scope", "read")
    plaintext = created.stdout.strip()
    headers = {"Authorization": f"Bearer {plaintext}"}
    for _ in range(3):  # the first check reads the database, the others hit this server's cache
        assert client.get("/api/datasets", headers=headers).status_code == 200
    key_id = next(row["id"] for row in client.get("/api/keys").json() if row["name"] == "shell-made")
    assert "revoked" in _keys_cli(settings, "revoke", str(key_id)).stdout
    assert client.get("/api/datasets", headers=headers).status_code == 401
    assert "shell-made\tread\trevoked" in _keys_cli(settings, "list").stdout


def test_a_checked_key_needs_no_database_read_until_something_is_revoked(client, settings, monkeypatch):
    key = _key(client, "cached", "read")
    assert client.get("/api/datasets", headers=_as(key)).status_code == 200
    reads = []
    real = repository.credentials
    monkeypatch.setattr(repository, "credentials", lambda *a, **kw: reads.append(1) or real(*a, **kw))
    assert client.get("/api/datasets", headers=_as(key)).status_code == 200
    assert reads == []
    other = _key(client, "other", "read")
    client.delete(f"/api/keys/{other['id']}")
    assert client.get("/api/datasets", headers=_as(key)).status_code == 200
    assert reads == [1]  # the stamp moved: every key is checked again once


def test_label_studio_paths_take_the_key_as_the_basic_auth_password(client):
    key = _key(client, "label-studio", "annotate")
    basic = {"Authorization": "Basic " + base64.b64encode(f"labelstudio:{key['key']}".encode()).decode()}
    anonymous = _anonymous(client.app)
    assert anonymous.get("/labelstudio/health", headers=basic).status_code == 200
    refused = anonymous.get("/labelstudio/health")
    assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Basic")
    assert anonymous.get("/api/annotation/jobs", headers=basic).status_code == 401  # basic auth is for /labelstudio


def test_the_first_start_writes_an_admin_key_file_readable_by_its_owner_only(tmp_path, monkeypatch, caplog):
    monkeypatch.delenv("IMAGEREC_ADMIN_KEY")
    settings = Settings(data_dir=tmp_path / "data")
    with caplog.at_level(logging.WARNING), TestClient(create_app(settings), base_url=BASE_URL) as client:
        key_file = settings.data_dir / "admin.key"
        key = key_file.read_text().strip()
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        assert client.get("/api/keys", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    assert str(key_file) in caplog.text and key not in caplog.text
    with TestClient(create_app(settings), base_url=BASE_URL) as client:  # a restart keeps the same key
        assert key_file.read_text().strip() == key
        assert client.get("/api/keys", headers={"Authorization": f"Bearer {key}"}).status_code == 200


@pytest.mark.training
def test_work_records_its_key_and_another_key_needs_admin_to_stop_it(client, tmp_path):
    dataset = register_dataset(client, tmp_path, "classify")
    owner, other = _as(_key(client, "owner", "train")), _as(_key(client, "other", "train"))
    task = client.post("/api/training/regular", json=tiny_training(dataset["id"], epochs=300), headers=owner).json()
    assert task["created_by"] == "owner"
    refused = client.post(f"/api/tasks/{task['id']}/cancel", headers=other)
    assert refused.status_code == 403 and "admin" in refused.json()["detail"]
    assert client.post(f"/api/tasks/{task['id']}/cancel", headers=owner).status_code == 200
    assert client.get(f"/api/datasets/{dataset['id']}").json()["created_by"].startswith("admin")


def test_auth_off_lets_every_request_in_and_says_so(tmp_path, monkeypatch, caplog):
    monkeypatch.delenv("IMAGEREC_ADMIN_KEY")
    with caplog.at_level(logging.WARNING), api_client(Settings(data_dir=tmp_path / "data", auth="off")) as client:
        assert _anonymous(client.app).get("/api/datasets").status_code == 200
    assert "IMAGEREC_AUTH=off" in caplog.text
    assert not (tmp_path / "data" / "admin.key").exists()


def test_a_wrong_key_is_401_with_a_bearer_challenge(client):
    response = _anonymous(client.app).get("/api/datasets", headers={"Authorization": "Bearer irk_nope_nope"})
    assert response.status_code == 401 and response.headers["www-authenticate"].startswith("Bearer")
    assert AUTH  # the fixture's key is what every other test sends
