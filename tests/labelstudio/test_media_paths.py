"""``/labelstudio/predict`` sends Label Studio's token only to the paths Label Studio serves media from.

Anyone who can call predict chooses the task's image reference, and the fetch carries ``Authorization: Token``:
a reference such as ``/api/projects/1/exports?delete=1`` would make imagerec call Label Studio's API as the
token's owner. These tests play Label Studio with a local server that records every request, register a model
row without weights (no model is loaded: every task here fails before inference), and check what reached it.
Served bytes that are not an image prove a fetch happened: the task then fails with 415, after the request.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from imagerec.config import Settings
from imagerec.labelstudio import schemas
from tests.helpers import api_client
from tests.labelstudio.fake_label_studio import FakeLabelStudio
from tests.labelstudio.test_label_config import RECTANGLES
from tests.labelstudio.test_protocol import add_model

NOT_AN_IMAGE = b"not an image"
FORBIDDEN = "/api/projects/1/exports?delete=1"

ALLOWED = [
    "/data/upload/1/a.png",
    "/data/local-files/?d=images/a.png",  # not under an allowed root here: Label Studio is asked
    "/tasks/5/resolve/?fileuri=czM6Ly9idWNrZXQvYS5wbmc=",
    "/projects/1/resolve/?fileuri=czM6Ly9idWNrZXQvYS5wbmc=",
    "/tasks/5/presign/?fileuri=s3%3A%2F%2Fbucket%2Fa.png",
    "/projects/1/presign/?fileuri=s3%3A%2F%2Fbucket%2Fa.png",
    "/storage-data/uploaded/?filepath=upload/1/a.png",
]
REFUSED = [
    FORBIDDEN,
    "/api/tasks/1/",
    "/tasks/1/annotations/",
    "/data/upload/../../api/projects/1/exports",
    "/data/upload/1/../../../api/projects/1/exports",
    "/data/upload/%2e%2e/%2E%2E/api/projects/1/exports",
    "/data/upload/%252e%252e/%252e%252e/api/projects/1/exports",  # decoded twice by a proxy in front
    "/data/upload/..%2f..%2fapi/projects/1/exports",
    "/data/upload/..\\..\\api/projects/1/exports",
    "/data/upload/",
    "/data/local-files/?d=a.png&delete=1",
    "/data/local-files/?d=",
    "/tasks/abc/resolve/?fileuri=eA==",
    "/tasks/1/resolve/",
    "/tasks/1/resolve/?fileuri=eA==&page=2",
    "/storage-data/uploaded/?filepath=x&next=/api/",
]


@pytest.fixture
def label_studio():
    with FakeLabelStudio() as fake:
        yield fake


@pytest.fixture
def settings(tmp_path: Path, allowed_root: Path, label_studio: FakeLabelStudio) -> Settings:
    return Settings(data_dir=tmp_path / "data", allowed_roots=[allowed_root], executor_poll_seconds=0.2,
                    labelstudio_url=label_studio.url, labelstudio_api_token=label_studio.token)


@pytest.fixture
def client(settings: Settings):
    with api_client(settings) as test_client:
        assert test_client.post(f"/api/models/{add_model(test_client, 'detect', name='d')}/default").status_code == 200
        yield test_client


def predict(client: TestClient, references: list[str]):
    tasks = [{"id": 100 + i, "data": {"image": reference}} for i, reference in enumerate(references)]
    return client.post("/labelstudio/predict", json={"tasks": tasks, "label_config": RECTANGLES,
                                                     "project": "1.1718000000", "model_version": None})


def requested(label_studio: FakeLabelStudio) -> list[str]:
    return [request.path for request in label_studio.requests]


@pytest.mark.parametrize("reference", REFUSED)
def test_a_path_label_studio_serves_no_media_from_is_never_requested(client, label_studio, reference) -> None:
    label_studio.files[reference] = NOT_AN_IMAGE

    response = predict(client, [reference])

    assert response.status_code == 403, response.text
    [failure] = response.json()["errors"]
    assert failure["task"] == 100 and "refused" in failure["message"]
    assert label_studio.url not in response.text
    assert requested(label_studio) == []


def test_a_refused_task_is_refused_alone_and_the_others_are_still_fetched(client, label_studio) -> None:
    label_studio.files["/data/upload/1/a.png"] = NOT_AN_IMAGE

    response = predict(client, [FORBIDDEN, "/data/upload/1/a.png"])

    assert response.status_code == 403  # every task failed: the first failure's status
    assert [(e["task"], e["status_code"]) for e in response.json()["errors"]] == [(100, 403), (101, 415)]
    assert requested(label_studio) == ["/data/upload/1/a.png"]


@pytest.mark.parametrize("reference", ALLOWED)
def test_label_studio_media_paths_are_fetched_with_the_token(client, label_studio, reference) -> None:
    label_studio.files[reference] = NOT_AN_IMAGE

    response = predict(client, [reference])

    assert response.status_code == 415 and "not an image" in response.json()["detail"]  # fetched, then decoded
    assert [(r.path, r.authorization) for r in label_studio.requests] == [(reference, "Token secret-token")]


def test_an_absolute_url_on_the_label_studio_host_is_checked_the_same_way(client, label_studio) -> None:
    label_studio.files["/data/upload/1/a.png"] = NOT_AN_IMAGE

    allowed = predict(client, [f"{label_studio.url}/data/upload/1/a.png"])
    refused = predict(client, [f"{label_studio.url}{FORBIDDEN}", f"{label_studio.url}/data/upload/%2e%2e/api/x"])

    assert allowed.status_code == 415
    assert refused.status_code == 403
    assert requested(label_studio) == ["/data/upload/1/a.png"]


@pytest.mark.parametrize("target", [FORBIDDEN, "/data/upload/../../api/projects/1/exports",
                                    "{other}/data/upload/1/a.png"])
def test_a_redirect_off_the_media_paths_is_not_followed(client, label_studio, target) -> None:
    with FakeLabelStudio(files={"/data/upload/1/a.png": NOT_AN_IMAGE}) as other:
        label_studio.redirects["/data/upload/1/moved.png"] = target.format(other=other.url)
        label_studio.files[FORBIDDEN] = NOT_AN_IMAGE

        response = predict(client, ["/data/upload/1/moved.png"])

        assert response.status_code == 403, response.text
        assert "redirected" in response.json()["detail"]
        assert requested(label_studio) == ["/data/upload/1/moved.png"] and other.requests == []


def test_a_redirect_to_another_media_path_is_followed(client, label_studio) -> None:
    label_studio.redirects["/data/upload/1/moved.png"] = "/data/upload/1/a.png"
    label_studio.files["/data/upload/1/a.png"] = NOT_AN_IMAGE

    response = predict(client, ["/data/upload/1/moved.png"])

    assert response.status_code == 415
    assert requested(label_studio) == ["/data/upload/1/moved.png", "/data/upload/1/a.png"]


def test_more_tasks_than_the_cap_are_refused_before_any_fetch(client, label_studio) -> None:
    label_studio.files["/data/upload/1/a.png"] = NOT_AN_IMAGE

    response = predict(client, ["/data/upload/1/a.png"] * 101)

    assert response.status_code in (413, 422)
    assert requested(label_studio) == []
    assert getattr(schemas, "MAX_PREDICT_TASKS", None) == 100
