"""Label Studio connections and projects over HTTP: tokens of both kinds (a personal access token exchanged and
refreshed, a legacy token sent as it is), registered connections (encrypted, never returned), /setup refusing an
unregistered Label Studio, and a project's model kept in the database."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from imagerec.config import Settings
from imagerec.labelstudio import connections
from imagerec.labelstudio.images import LabelStudioUnavailable, open_fetcher
from tests.databases import stored_text
from tests.labelstudio.fake_label_studio import FakeLabelStudio, jwt
from tests.labelstudio.test_label_config import KEYPOINTS, RECTANGLES
from tests.labelstudio.test_protocol import add_model

pytestmark = pytest.mark.both_databases

IMAGE = "/data/upload/1/a.png"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def label_studio():
    with FakeLabelStudio(files={IMAGE: b"png bytes"}) as fake:
        yield fake


async def fetch(settings: Settings, reference: str = IMAGE) -> bytes:
    async with open_fetcher(settings, connections.configured(settings)) as fetcher:
        return (await fetcher.fetch(reference)).data


@pytest.mark.anyio
async def test_a_personal_access_token_is_exchanged_kept_and_refreshed(tmp_path: Path, label_studio):
    settings = Settings(data_dir=tmp_path, labelstudio_url=label_studio.url,
                        labelstudio_api_token=label_studio.personal_token)

    assert await fetch(settings) == b"png bytes"
    assert await fetch(settings) == b"png bytes"
    assert len(label_studio.issued) == 1  # the access token was kept for the second fetch
    label_studio.expire_access()
    assert await fetch(settings) == b"png bytes"  # a 401, one refresh, one retry

    assert len(label_studio.issued) == 2
    image_requests = [r for r in label_studio.requests if r.path == IMAGE]
    assert {r.authorization.split()[0] for r in image_requests} == {"Bearer"}
    assert label_studio.personal_token not in {r.authorization for r in image_requests}


@pytest.mark.anyio
async def test_a_legacy_token_is_sent_as_a_token(tmp_path: Path, label_studio):
    settings = Settings(data_dir=tmp_path, labelstudio_url=label_studio.url, labelstudio_api_token=label_studio.token)
    assert await fetch(settings) == b"png bytes"
    assert [r.authorization for r in label_studio.requests] == [f"Token {label_studio.token}"]


@pytest.mark.anyio
async def test_a_refused_token_is_one_clear_error_and_one_log_line(tmp_path: Path, label_studio, caplog):
    revoked = jwt({"token_type": "refresh", "exp": 4102444800, "jti": "revoked"})
    settings = Settings(data_dir=tmp_path, labelstudio_url=label_studio.url, labelstudio_api_token=revoked)
    caplog.set_level(logging.WARNING, logger="imagerec.labelstudio.client")
    for _ in range(3):
        with pytest.raises(LabelStudioUnavailable, match="did not accept the personal access token"):
            await fetch(settings)
    assert len([r for r in caplog.records if "refuses imagerec's personal token" in r.message]) == 1
    assert all(r.path == "/api/token/refresh" for r in label_studio.requests)  # no image was asked for


def test_connections_keep_the_token_encrypted_and_never_return_it(client: TestClient, settings: Settings):
    token = "a-legacy-token-0123456789"
    first = client.post("/api/labelstudio/connections", json={"url": "HTTP://LS.example:80/", "token": token})
    again = client.post("/api/labelstudio/connections", json={"url": "http://ls.example", "token": token + "x"})
    listed = client.get("/api/labelstudio/connections")

    assert first.status_code == 201 and again.status_code == 200, (first.text, again.text)
    assert first.json()["url"] == "http://ls.example" and first.json()["token_kind"] == "legacy"
    assert listed.json() == [again.json()] and token not in listed.text
    stored = stored_text(settings, "labelstudio_connections")
    assert "token_encrypted" in stored and token not in stored
    assert client.delete(f"/api/labelstudio/connections/{first.json()['id']}").status_code == 204
    assert client.get("/api/labelstudio/connections").json() == []


def test_connection_requests_are_checked(client: TestClient):
    for body in ({"url": "ftp://ls.example", "token": "0123456789"}, {"url": "http://u:p@ls.example",
                                                                       "token": "0123456789"},
                 {"url": "http://ls.example", "token": "short"}, {"url": "http://ls", "token": "0123456789",
                                                                  "extra": 1}):
        response = client.post("/api/labelstudio/connections", json=body)
        assert response.status_code in (400, 422), (body, response.text)
    reader = client.post("/api/keys", json={"name": "reader", "scopes": ["read", "annotate"]}).json()["key"]
    refused = client.post("/api/labelstudio/connections", json={"url": "http://ls.example", "token": "0123456789"},
                          headers={"Authorization": f"Bearer {reader}"})
    assert refused.status_code == 403
    assert client.get("/api/labelstudio/connections").json() == []


def _setup(client: TestClient, schema: str = RECTANGLES, *, hostname: str = "http://ls.example:8080", **extra):
    return client.post("/labelstudio/setup", json={"project": "3.1718000000", "schema": schema,
                                                   "hostname": hostname, "access_token": "x", **extra})


def test_setup_from_an_unregistered_label_studio_is_refused(client: TestClient):
    client.post(f"/api/models/{add_model(client, 'detect', name='d')}/default")
    refused = _setup(client)
    assert refused.status_code == 403 and "POST /api/labelstudio/connections" in refused.json()["detail"]
    client.post("/api/labelstudio/connections", json={"url": "http://ls.example:8080", "token": "0123456789"})
    assert _setup(client).status_code == 200


@pytest.fixture
def registered(client: TestClient) -> None:
    client.post("/api/labelstudio/connections", json={"url": "http://ls.example:8080", "token": "0123456789"})


def test_a_project_keeps_its_model(client: TestClient, registered):
    first, second = add_model(client, "detect", name="first"), add_model(client, "detect", name="second")
    client.post(f"/api/models/{first}/default")

    bound = _setup(client, extra_params={"model_id": second})  # the backend's extra params name a model
    kept = _setup(client, extra_params={"model_id": second})
    client.post(f"/api/models/{second}/default")  # another default does not move a bound project
    picked = _setup(client, model_version=f"imagerec-model-{first}", extra_params={"model_id": second})
    stays = _setup(client, extra_params={"model_id": second})

    assert [r.json()["model_version"] for r in (bound, kept, picked, stays)] == [
        f"imagerec-model-{second}", f"imagerec-model-{second}", f"imagerec-model-{first}", f"imagerec-model-{first}"]
    project = client.get("/api/labelstudio/projects/3").json()
    assert (project["labelstudio_url"], project["task"], project["model_id"]) == ("http://ls.example:8080", "detect",
                                                                                  first)
    assert project["extra_params"] == {"model_id": second} and project["problem"] is None
    moved = client.put("/api/labelstudio/projects/3/model", json={"model_id": second})
    assert moved.status_code == 200 and moved.json()["model_version"] == f"imagerec-model-{second}"
    assert _setup(client).json()["model_version"] == f"imagerec-model-{second}"
    pose = add_model(client, "pose", name="p")
    assert client.put("/api/labelstudio/projects/3/model", json={"model_id": pose}).status_code == 422
    assert client.put("/api/labelstudio/projects/3/model", json={"model_id": 999}).status_code == 404
    assert client.get("/api/labelstudio/projects/4").status_code == 404


def test_a_setup_problem_is_kept_where_a_user_can_read_it(client: TestClient, registered):
    failed = _setup(client)
    assert failed.status_code == 422
    project = client.get("/api/labelstudio/projects/3").json()
    assert "no detect model is marked default" in project["problem"] and project["problem_at"]
    assert client.get("/labelstudio/health").json()["status"] == "UP"

    client.post(f"/api/models/{add_model(client, 'detect', name='d')}/default")
    assert _setup(client).status_code == 200
    assert client.get("/api/labelstudio/projects/3").json()["problem"] is None


def test_versions_of_a_project_are_those_that_fit_its_config(client: TestClient, registered):
    fits = add_model(client, "detect", name="fits")  # class "square": RECTANGLES has a label for it
    other = add_model(client, "detect", name="other")
    pose = add_model(client, "pose", name="pose")
    client.post(f"/api/models/{fits}/default")
    _setup(client)
    from imagerec.db import unit_of_work
    from imagerec.model_versions.models import ModelVersion

    with unit_of_work(client.app.state.session_factory) as session:
        session.get(ModelVersion, other).class_names = ["zebra"]

    scoped = client.get("/labelstudio/projects/3/versions").json()["versions"]
    by_query = client.get("/labelstudio/versions", params={"project": 3}).json()["versions"]
    everything = client.get("/labelstudio/versions").json()["versions"]
    assert scoped == by_query == [f"imagerec-model-{fits}"]
    assert set(everything) == {f"imagerec-model-{m}" for m in (fits, other, pose)}
    assert client.post("/labelstudio/projects/3/setup", json={"project": "3.1", "schema": KEYPOINTS,
                                                             "hostname": "http://ls.example:8080"}).status_code == 422
