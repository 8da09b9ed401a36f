"""Bad training requests: each a clear 4xx naming the problem, and no task created."""

from __future__ import annotations

import pytest

from tests.helpers import register_dataset, tiny_training


@pytest.fixture
def dataset(client, tmp_path) -> dict:
    return register_dataset(client, tmp_path, "detect")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"epochs": -1}, "epochs"),
        ({"epochs": 0}, "epochs"),
        ({"imgsz": 70}, "imgsz"),
        ({"batch": 0}, "batch"),
        ({"lr0": 0}, "lr0"),
        ({"device": "cuda:0; rm -rf /"}, "device"),
        ({"pretrained_weights": "../../etc/passwd.pt", "architecture": None}, "pretrained_weights"),
        ({"architecture": "resnet50"}, "architecture"),
        ({"learning_rate": 0.1}, "learning_rate"),
    ],
)
def test_invalid_fields_are_422_naming_the_field(client, dataset, change, field):
    body = {k: v for k, v in {**tiny_training(dataset["id"]), **change}.items() if v is not None}
    response = client.post("/api/training/regular", json=body)
    assert response.status_code == 422, response.text
    assert any(field in error["loc"] for error in response.json()["detail"]), response.json()
    assert client.get("/api/tasks").json() == []


def test_starting_point_must_be_exactly_one(client, dataset):
    body = tiny_training(dataset["id"], base_model_id=1)
    response = client.post("/api/training/regular", json=body)
    assert response.status_code == 422 and "exactly one starting point" in response.text
    del body["architecture"], body["base_model_id"]
    assert client.post("/api/training/regular", json=body).status_code == 422


def test_missing_dataset_and_model_are_404(client, dataset):
    response = client.post("/api/training/regular", json=tiny_training(9999))
    assert response.status_code == 404 and "dataset 9999" in response.json()["detail"]
    body = tiny_training(dataset["id"], base_model_id=4242)
    del body["architecture"]
    response = client.post("/api/training/regular", json=body)
    assert response.status_code == 404 and "model 4242" in response.json()["detail"]
    assert client.get("/api/tasks").json() == []


def test_missing_pretrained_weights_says_where_to_put_them(client, settings, dataset):
    body = tiny_training(dataset["id"], pretrained_weights="yolov8n.pt")
    del body["architecture"]
    response = client.post("/api/training/regular", json=body)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert "yolov8n.pt" in detail and "IMAGEREC_MODELS_DIR" in detail
    assert str(settings.data_dir) not in detail  # no absolute server path in an answer


def test_unknown_task_and_model_ids_are_404(client):
    for path in ("/api/training/tasks/77", "/api/tasks/77", "/api/training/tasks/77/logs", "/api/models/77"):
        assert client.get(path).status_code == 404, path
    assert client.post("/api/training/tasks/77/cancel").status_code == 404
    assert client.get("/api/training/tasks", params={"status": "bogus"}).status_code == 422
