"""The auto-annotate form: the schema and the server name the same fields, and a field neither knows is a 422
(a misspelt option must not fall back to its default in silence)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.annotation.image_samples import noise_jpeg
from tests.trained_models import register_trained_model

URL = "/api/auto_annotate"


def _post(client: TestClient, **form):
    return client.post(URL, files=[("files", ("noise.jpg", noise_jpeg(64, 64), "image/jpeg"))], data=form)


def _form_schema(client: TestClient) -> dict:
    schemas = client.get("/openapi.json").json()
    body = schemas["paths"][URL]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    return schemas["components"]["schemas"][body["$ref"].rsplit("/", 1)[-1]]


def _messages(response) -> list[str]:
    return [error["msg"] for error in response.json()["detail"]]


def test_openapi_names_the_output_field_format(client: TestClient) -> None:
    properties = _form_schema(client)["properties"]
    assert "format" in properties and "output_format" not in properties
    assert properties["format"]["default"] == "json"


def test_output_format_is_refused_naming_the_field_and_the_known_ones(client: TestClient) -> None:
    response = _post(client, model_id=1, output_format="coco")
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "output_format"]
    assert error["msg"].startswith("unknown form field 'output_format'; known fields: files, model_id, task, format")
    assert "conf" in error["msg"] and "top_k" in error["msg"]  # the ones its parameter dependency declares


def test_every_unknown_field_is_named(client: TestClient) -> None:
    response = _post(client, model_id=1, confidence=0.5, colour="red")
    assert response.status_code == 422, response.text
    assert [m.split(";")[0] for m in _messages(response)] == ["unknown form field 'confidence'",
                                                              "unknown form field 'colour'"]


def test_a_misnamed_file_field_is_refused(client: TestClient) -> None:
    response = client.post(URL, files=[("file", ("noise.jpg", noise_jpeg(64, 64), "image/jpeg"))],
                           data={"model_id": 1})
    assert response.status_code == 422, response.text
    assert any(m.startswith("unknown form field 'file';") for m in _messages(response))


@pytest.mark.training
def test_format_coco_answers_a_coco_document(client: TestClient, trained_models) -> None:
    model_id = register_trained_model(client.app, trained_models("detect"))
    response = _post(client, model_id=model_id, format="coco", conf="0.01")
    assert response.status_code == 200, response.text
    document = response.json()
    assert set(document) >= {"images", "categories", "annotations"}
    assert document["images"][0]["file_name"] == "noise.jpg"
    assert [c["name"] for c in document["categories"]] == trained_models("detect").class_names
