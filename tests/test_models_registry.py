"""The model registry's default-per-task marker."""

from __future__ import annotations

import pytest

from tests.trained_models import TrainedModel, register_trained_model

pytestmark = pytest.mark.both_databases


def _fake(tmp_path, task: str) -> TrainedModel:
    weights = tmp_path / f"{task}.pt"
    weights.write_bytes(b"not loaded by these tests")
    return TrainedModel(task, weights, tmp_path, ["square"])


def test_one_default_model_per_task(client, tmp_path):
    first = register_trained_model(client.app, _fake(tmp_path, "detect"))
    second = register_trained_model(client.app, _fake(tmp_path, "detect"))
    other_task = register_trained_model(client.app, _fake(tmp_path, "pose"))
    assert client.post(f"/api/models/{other_task}/default").json()["is_default"] is True

    assert client.post(f"/api/models/{first}/default").json()["is_default"] is True
    assert client.post(f"/api/models/{second}/default").status_code == 200
    assert client.post(f"/api/models/{second}/default").status_code == 200  # idempotent
    defaults = {m["id"]: m["is_default"] for m in client.get("/api/models").json()}
    assert defaults == {first: False, second: True, other_task: True}
    assert client.post("/api/models/999/default").status_code == 404
