"""What Start training (and annotation events) answer before any training runs: a project set up first, extra
params checked at once (a 422 kept as the project's problem), one task per project at a time, and annotation
events counted towards IMAGEREC_LABELSTUDIO_TRAIN_EVERY."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from imagerec.config import Settings
from tests.helpers import api_client, wait_until_finished
from tests.labelstudio.test_label_config import RECTANGLES
from tests.labelstudio.test_protocol import add_model

pytestmark = pytest.mark.both_databases

HOST = "http://127.0.0.1:9"  # registered, never answering: a task that reaches it fails at once


def _setup(client: TestClient, **extra) -> None:
    client.post("/api/labelstudio/connections", json={"url": HOST, "token": "0123456789"})
    model = add_model(client, "detect", name="d")
    client.post(f"/api/models/{model}/default")
    response = client.post("/labelstudio/setup", json={"project": "7.1718000000", "schema": RECTANGLES,
                                                       "hostname": HOST, "extra_params": extra})
    assert response.status_code == 200, response.text


def _start(client: TestClient):
    return client.post("/labelstudio/webhook", json={"action": "START_TRAINING", "project": {"id": 7}})


@pytest.mark.parametrize(("extra", "message"), [
    ({"epochs": 0}, "epochs"),
    ({"mode": "distillation"}, "regular or incremental"),
    ({"dataset_id": 3}, "dataset_id"),
    ({"base_model_id": 5}, "base_model_id"),  # incremental: the project's model is the base
    ({"nonsense": 1}, "nonsense"),
    ({"max_class_regression": 2}, "max_class_regression"),
])
def test_bad_extra_params_are_a_422_kept_as_the_problem(client: TestClient, extra: dict, message: str):
    _setup(client, **extra)
    refused = _start(client)
    assert refused.status_code == 422 and message in refused.json()["detail"], refused.text
    assert message in client.get("/api/labelstudio/projects/7").json()["problem"]
    assert client.get("/api/tasks").json() == []


def test_one_task_per_project_and_its_failure_is_readable(client: TestClient):
    _setup(client, epochs=1, imgsz=64)
    first, second = _start(client), _start(client)
    assert first.json()["status"] == "queued" and second.json()["status"] == "running"
    assert first.json()["task_id"] == second.json()["task_id"]
    task = wait_until_finished(client, first.json()["task_id"], timeout=60)
    assert task["status"] == "failed" and "could not export project 7" in task["error"]
    assert task["kind"] == "labelstudio_training" and task["type"] == "incremental"
    project = client.get("/api/labelstudio/projects/7").json()
    assert project["last_task_id"] == task["id"] and project["model_id"] is not None  # unchanged


def test_annotation_events_count_towards_a_training(tmp_path: Path):
    settings = Settings(data_dir=tmp_path / "data", labelstudio_train_every=3, executor_poll_seconds=0.2)
    with api_client(settings) as client:
        _setup(client)
        event = {"action": "ANNOTATION_CREATED", "project": {"id": 7}, "annotation": {"id": 1}}
        answers = [client.post("/labelstudio/webhook", json=event).json() for _ in range(3)]
        assert [a["status"] for a in answers] == ["counted", "counted", "queued"]
        assert client.get("/api/labelstudio/projects/7").json()["annotations_since_training"] == 0
        assert wait_until_finished(client, answers[-1]["task_id"], timeout=60)["status"] == "failed"
