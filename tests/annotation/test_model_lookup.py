"""Which model ``POST /api/auto_annotate`` uses: read without SQLite's write lock, and always the current row."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from imagerec.config import Settings
from imagerec.db import make_engine, make_session_factory, read_session, unit_of_work
from imagerec.model_versions.models import ModelVersion
from tests.annotation.image_samples import noise_jpeg
from tests.trained_models import TrainedModel, register_trained_model

URL = "/api/auto_annotate"


@contextmanager
def write_lock_held(database: Path) -> Iterator[None]:
    """Another connection holds SQLite's write lock, as a training child does while it commits."""
    writer = sqlite3.connect(database, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")
        yield
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def annotate(client: TestClient, **form):
    return client.post(URL, files=[("files", ("a.jpg", noise_jpeg(64, 64), "image/jpeg"))], data=form)


def test_a_read_session_reads_while_another_connection_holds_the_write_lock(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    settings.ensure_dirs()
    engine = make_engine(settings.sqlalchemy_url)
    ModelVersion.metadata.create_all(engine)
    factory = make_session_factory(engine)
    with unit_of_work(factory) as session:
        session.add(ModelVersion(name="m", task="detect", architecture="yolov8n", class_names=["a"], imgsz=64,
                                 metrics={}, weights_path="models/x/best.pt"))
    try:
        with write_lock_held(settings.data_dir / "imagerec.db"), read_session(factory) as session:
            model = session.get(ModelVersion, 1)
        assert (model.name, model.class_names) == ("m", ["a"])  # still readable after the session closed
    finally:
        engine.dispose()


@pytest.mark.training
def test_annotation_is_not_held_up_by_a_writer(client: TestClient, trained_models) -> None:
    model_id = register_trained_model(client.app, trained_models("detect"))
    with write_lock_held(client.app.state.settings.data_dir / "imagerec.db"):
        response = annotate(client, model_id=model_id)
    assert response.status_code == 200, response.text


@pytest.mark.training
def test_a_deleted_model_is_not_found_by_the_next_request(client: TestClient, trained_models) -> None:
    model_id = register_trained_model(client.app, trained_models("detect"))
    assert client.post(f"/api/models/{model_id}/default").status_code == 200
    assert annotate(client, model_id=model_id).status_code == 200
    assert annotate(client, task="detect").json()["model"]["id"] == model_id  # the model is loaded and cached
    assert client.delete(f"/api/models/{model_id}").status_code == 200
    gone = annotate(client, model_id=model_id)
    assert gone.status_code == 404 and f"model {model_id} not found" in gone.json()["detail"]
    no_default = annotate(client, task="detect")
    assert no_default.status_code == 404 and "no default detect model" in no_default.json()["detail"]


@pytest.mark.training
def test_a_new_default_is_used_by_the_next_request(client: TestClient, trained_models) -> None:
    detect: TrainedModel = trained_models("detect")
    first, second = (register_trained_model(client.app, detect, name=name) for name in ("first", "second"))
    for model_id in (first, second, first):
        assert client.post(f"/api/models/{model_id}/default").status_code == 200
        response = annotate(client, task="detect")
        assert response.status_code == 200, response.text
        assert response.json()["model"] == {"id": model_id, "name": "first" if model_id == first else "second",
                                             "task": "detect", "class_names": detect.class_names}
