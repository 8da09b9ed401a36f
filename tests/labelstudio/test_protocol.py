"""The protocol endpoints other than predict, called with the bodies Label Studio sends.

Shapes from Label Studio's ``label_studio/ml/api_connector.py`` (``setup``: project, schema, hostname,
access_token, model_version; ``get_versions``: GET with no body; health: GET) and label-studio-ml-backend's
``label_studio_ml/api.py`` (the answers: ``{"status": "UP", "model_class": …}``, ``{"model_version": …}``,
``{"versions": […]}``, ``{}`` for metrics).
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from imagerec.config import Settings
from imagerec.db import unit_of_work
from imagerec.model_versions.models import ModelVersion
from tests.helpers import api_client
from tests.labelstudio.fake_label_studio import FakeLabelStudio
from tests.labelstudio.test_label_config import CHOICES, KEYPOINTS, RECTANGLES


def add_model(client: TestClient, task: str, *, name: str) -> int:
    """A registry row (no weights: setup and versions never load a model)."""
    with unit_of_work(client.app.state.session_factory) as session:
        model = ModelVersion(name=name, task=task, architecture="yolov8n", class_names=["square"], imgsz=64,
                             metrics={}, weights_path=f"models/{name}/best.pt", training_mode="regular")
        session.add(model)
        session.flush()
        return model.id


LABEL_STUDIO_HOST = "http://localhost:8080"  # what Label Studio sends as its hostname when none is configured


@pytest.fixture(autouse=True)
def registered(client: TestClient) -> None:
    """The Label Studio these setups come from is registered, as /setup requires."""
    response = client.post("/api/labelstudio/connections", json={"url": LABEL_STUDIO_HOST, "token": "legacy-token"})
    assert response.status_code == 201, response.text


def setup_body(schema: str, **extra) -> dict:
    return {"project": "3.1718000000", "schema": schema, "hostname": LABEL_STUDIO_HOST,
            "access_token": "abc", "model_version": None, **extra}


def test_health_answers_up_on_every_path_label_studio_uses(client: TestClient) -> None:
    for path in ("/labelstudio", "/labelstudio/", "/labelstudio/health"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 200, path
        assert response.json()["status"] == "UP" and response.json()["model_class"] == "imagerec"


def test_setup_returns_the_default_model_of_the_task_the_config_implies(client: TestClient) -> None:
    detect_ids = [add_model(client, "detect", name=f"d{i}") for i in range(2)]
    pose_id = add_model(client, "pose", name="p")
    for model_id in (detect_ids[1], pose_id):
        assert client.post(f"/api/models/{model_id}/default").status_code == 200
    # unknown keys (newer Label Studio versions send more) are accepted
    response = client.post("/labelstudio/setup", json=setup_body(RECTANGLES, extra_params={"a": 1}, compute_id=None))
    assert response.status_code == 200, response.text
    assert response.json() == {"model_version": f"imagerec-model-{detect_ids[1]}"}
    pose = client.post("/labelstudio/setup", json=setup_body(KEYPOINTS)).json()
    assert pose == {"model_version": f"imagerec-model-{pose_id}"}


def test_setup_without_a_default_model_says_how_to_mark_one(client: TestClient) -> None:
    add_model(client, "classify", name="c")
    response = client.post("/labelstudio/setup", json=setup_body(CHOICES))
    assert response.status_code == 422
    assert "no classify model is marked default" in response.json()["detail"]
    assert "/api/models/{id}/default" in response.json()["detail"]


def test_setup_with_a_broken_config_is_a_clear_400(client: TestClient) -> None:
    response = client.post("/labelstudio/setup", json=setup_body("<View><Image name="))
    assert response.status_code == 400 and "not valid XML" in response.json()["detail"]


def test_versions_lists_registered_models(client: TestClient) -> None:
    detect_id, segment_id = add_model(client, "detect", name="d"), add_model(client, "segment", name="s")
    assert client.get("/labelstudio/versions").json() == {
        "versions": [f"imagerec-model-{segment_id}", f"imagerec-model-{detect_id}"]}
    assert client.get("/labelstudio/versions", params={"task": "detect"}).json() == {
        "versions": [f"imagerec-model-{detect_id}"]}
    assert client.post("/labelstudio/versions", json={"project": "3.1718000000"}).status_code == 200


def test_metrics_webhooks_and_train_of_an_unknown_project_answer_at_once(client: TestClient) -> None:
    assert client.get("/labelstudio/metrics").json() == {}
    webhook = client.post("/labelstudio/webhook", json={"action": "ANNOTATION_CREATED", "annotation": {"id": 1},
                                                        "project": {"id": 3}})
    assert webhook.status_code == 200 and webhook.json()["status"] == "ignored"
    other = client.post("/labelstudio/webhook", json={"action": "PROJECT_UPDATED", "project": {"id": 3}})
    assert other.status_code == 200 and other.json()["status"] == "ignored"
    for path, body in (("/labelstudio/train", {"annotations": [], "project": "3.1718000000"}),
                       ("/labelstudio/webhook", {"action": "START_TRAINING", "project": {"id": 3}})):
        refused = client.post(path, json=body)
        assert refused.status_code == 422 and "never set up" in refused.json()["detail"], path
    assert client.get("/api/tasks").json() == []


def test_health_answers_at_once_while_a_predict_waits_on_a_slow_label_studio(tmp_path: Path) -> None:
    with FakeLabelStudio(files={"/data/upload/1/a.png": b"not an image"}, delay_seconds=3) as label_studio:
        settings = Settings(data_dir=tmp_path / "slow", labelstudio_url=label_studio.url,
                            labelstudio_api_token=label_studio.token)
        with api_client(settings) as client, ThreadPoolExecutor(1) as pool:
            client.post(f"/api/models/{add_model(client, 'detect', name='d')}/default")
            body = {"tasks": [{"id": 1, "data": {"image": "/data/upload/1/a.png"}}], "label_config": RECTANGLES,
                    "project": "1.1718000000", "model_version": None, "params": {}}
            slow = pool.submit(client.post, "/labelstudio/predict", json=body)
            deadline = time.monotonic() + 10
            while not label_studio.requests and time.monotonic() < deadline:
                time.sleep(0.02)
            assert client.get("/labelstudio/health").json()["status"] == "UP"
            assert not slow.done()  # answered while the predict still waits (Label Studio takes 3 s)
            answer = slow.result(timeout=30)
    assert answer.status_code == 415 and "not an image" in answer.json()["detail"]  # the bytes were no image
