"""A finished training over HTTP: its run files (results.csv, args.yaml, Ultralytics' plots) are listed and
served by bare name to a read-only key, nothing outside the run's train folder is reachable, and its model comes
with the final validation stored as an evaluation."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from imagerec.db import make_engine, make_session_factory, read_session
from imagerec.evaluation.models import Evaluation
from tests.helpers import api_client, register_dataset, start_training, tiny_training, wait_until_finished

pytestmark = pytest.mark.training

CONTENT_TYPES = {"csv": "text/csv", "png": "image/png", "jpg": "image/jpeg", "yaml": "application/yaml"}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _read_only(client) -> dict:
    response = client.post("/api/keys", json={"name": "reader", "scopes": ["read"]})
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['key']}"}


def _training_evaluations(settings, model_id: int) -> list[Evaluation]:
    engine = make_engine(settings.sqlalchemy_url)
    try:
        with read_session(make_session_factory(engine)) as session:
            return list(session.scalars(select(Evaluation).where(Evaluation.model_id == model_id,
                                                                 Evaluation.source == "training")))
    finally:
        engine.dispose()


@pytest.fixture
def client(settings):
    with api_client(settings.model_copy(update={"training_plots": True})) as plotting:
        yield plotting


def test_a_training_serves_its_run_files_and_records_its_final_validation(client, settings, tmp_path):
    dataset = register_dataset(client, tmp_path, "detect")
    task = start_training(client, tiny_training(dataset["id"]))
    done = wait_until_finished(client, task["id"])
    assert done["status"] == "succeeded", done["error"]
    reader = _read_only(client)
    base = f"/api/training/tasks/{task['id']}/artifacts"

    listed = client.get(base, headers=reader)
    assert listed.status_code == 200, listed.text
    artifacts = listed.json()
    names = [artifact["name"] for artifact in artifacts]
    assert names == sorted(names) and {"results.csv", "args.yaml"} <= set(names)
    assert any(artifact["kind"] == "png" for artifact in artifacts), names
    for artifact in artifacts:
        response = client.get(f"{base}/{artifact['name']}", headers=reader)
        assert response.status_code == 200, (artifact, response.text)
        assert response.headers["content-type"].startswith(CONTENT_TYPES[artifact["kind"]]), artifact
        assert len(response.content) == artifact["size"] > 0
        if artifact["kind"] == "png":
            assert response.content.startswith(PNG_SIGNATURE), artifact["name"]
    assert b"epoch" in client.get(f"{base}/results.csv", headers=reader).content

    outside = tmp_path / "secret.csv"
    outside.write_text("not a run file\n")
    (settings.data_dir / "runs" / str(task["id"]) / "train" / "leak.csv").symlink_to(outside)
    assert "leak.csv" not in [artifact["name"] for artifact in client.get(base, headers=reader).json()]
    for name in ("leak.csv", "nope.png", "weights"):  # outside via a link; absent; a folder
        response = client.get(f"{base}/{name}", headers=reader)
        assert response.status_code == 404 and name in response.json()["detail"], (name, response.text)
    for name in ("..%2Fx", "a/b", ".hidden.csv", "x%00.png"):
        response = client.get(f"{base}/{name}", headers=reader)
        assert response.status_code in (404, 422), (name, response.status_code, response.text)
        assert b"not a run file" not in response.content
    assert client.get("/api/training/tasks/999999/artifacts", headers=reader).status_code == 404

    model = client.get(f"/api/models/{done['model_id']}").json()
    evaluations = _training_evaluations(settings, model["id"])
    assert len(evaluations) == 1
    evaluation = evaluations[0]
    assert evaluation.task_id is None and evaluation.dataset_id == dataset["id"] and evaluation.split == "val"
    assert evaluation.status == "succeeded" and evaluation.files_dir == f"runs/{task['id']}/train"
    assert evaluation.classes["common"] == model["class_names"] and evaluation.images > 0
    assert 0.0 <= evaluation.metrics["overall"]["box"]["map50_95"] <= 1.0
    assert evaluation.params["conf"] == 0.25 and evaluation.params["imgsz"] == 64

    assert client.delete(f"/api/training/tasks/{task['id']}").status_code == 204  # the evaluation outlives it
    assert len(_training_evaluations(settings, model["id"])) == 1
