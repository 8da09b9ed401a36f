"""A user's mistake gets a clear 4xx, never a 500: non-finite numbers, integers past 64 bits, loose types,
and no absolute server path in any answer."""

from __future__ import annotations

import json

import pytest

from tests.helpers import register_dataset, tiny_training

HUGE = 2**70


def _post_json(client, path: str, text: str):
    return client.post(path, content=text, headers={"content-type": "application/json"})


@pytest.mark.parametrize("field, literal", [
    ("epochs", "1e999"), ("lr0", "NaN"), ("lr0", "-Infinity"), ("lr0", "Infinity"),
])
def test_non_finite_numbers_are_422_with_a_renderable_body(client, field, literal):
    others = json.dumps({key: value for key, value in tiny_training(1).items() if key != field})
    body = others[:-1] + f', "{field}": {literal}}}'  # JSON as a client may send it: Python reads it as inf/nan
    response = _post_json(client, "/api/training/regular", body)
    assert response.status_code == 422, response.text
    error = next(e for e in response.json()["detail"] if e["loc"][-1] == field)
    assert isinstance(error["input"], str)  # "inf" / "nan": JSON has no such numbers


def test_a_non_finite_stage_lr_scale_is_422(client):
    body = json.dumps({**tiny_training(1), "stages": [{"epochs": 1, "freeze": "none"}]})
    body = body.replace('"freeze": "none"', '"freeze": "none", "lr_scale": 1e999')
    assert _post_json(client, "/api/training/freeze-strategy", body).status_code == 422


@pytest.mark.parametrize("value", ["nan", "inf", "1e999", "-inf"])
def test_non_finite_form_numbers_on_auto_annotate_are_422(client, value):
    response = client.post("/api/auto_annotate", data={"conf": value, "task": "detect"},
                           files={"files": ("a.png", b"not an image", "image/png")})
    assert response.status_code == 422, response.text


@pytest.mark.parametrize("path", [
    "/api/training/tasks/99999999999999999999999",
    "/api/tasks/99999999999999999999999/logs",
    "/api/training/tasks?offset=9223372036854775808",
    f"/api/tasks/1/logs?after={2**63}",
    f"/api/models/{HUGE}",
    f"/api/datasets/{HUGE}",
    f"/api/models?offset={HUGE}",
])
def test_integers_past_64_bits_are_422_not_500(client, path):
    assert client.get(path).status_code == 422, path


def test_huge_ids_in_bodies_are_422(client):
    for body in ({**tiny_training(HUGE)}, {**tiny_training(1), "architecture": None, "base_model_id": HUGE}):
        assert client.post("/api/training/regular", json=body).status_code == 422
    response = client.post("/api/annotation/jobs", json={"dataset_id": HUGE, "model_id": HUGE})
    assert response.status_code == 422


@pytest.mark.parametrize("field, value", [("dataset_id", True), ("epochs", True), ("epochs", "5"), ("batch", 8.0),
                                          ("workers", False)])
def test_ids_counts_and_flags_are_strict(client, tmp_path, field, value):
    dataset = register_dataset(client, tmp_path, "detect")
    body = {**tiny_training(dataset["id"]), field: value}
    response = client.post("/api/training/regular", json=body)
    assert response.status_code == 422, response.text
    assert client.get("/api/training/tasks").json() == []  # nothing was queued


def test_strict_flags_in_nested_settings(client):
    body = {"base_model_id": 1, "dataset_id": 1, "replay": {"enabled": 1}}
    assert client.post("/api/training/incremental", json=body).status_code == 422


def test_answers_never_name_absolute_server_paths(client, settings, tmp_path):
    import zipfile

    archive = tmp_path / "broken.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("data.yaml", "names: [a]\n")
        bundle.writestr("images/train/a.jpg", b"not a jpeg")
        bundle.writestr("images/val/b.jpg", b"\xff\xd8\xff broken")
        bundle.writestr("labels/train/a.txt", "0 0.5 0.5 0.1 0.1\n")
    with archive.open("rb") as handle:
        response = client.post("/api/datasets", data={"name": "broken", "task": "detect"},
                               files={"file": ("broken.zip", handle, "application/zip")})
    assert response.status_code == 422
    assert str(settings.data_dir) not in response.text and str(tmp_path) not in response.text


def test_a_huge_model_id_in_the_auto_annotate_form_is_422(client):
    response = client.post("/api/auto_annotate", data={"model_id": str(HUGE)},
                           files={"files": ("a.png", b"not an image", "image/png")})
    assert response.status_code == 422, response.text
