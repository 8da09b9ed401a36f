"""Deleting datasets and models over HTTP: ids are never handed out again, and what a model was trained on (or
from) stays readable as its lineage after those are gone."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from imagerec.config import Settings
from imagerec.db import unit_of_work
from imagerec.model_versions.models import ModelVersion
from imagerec.tasks import repository as tasks_repository
from imagerec.tasks.models import Task, TaskKind, TaskStatus
from tests.datasets.helpers import stored_folders
from tests.helpers import register_dataset, start_training, tiny_training, wait_until_finished
from tests.trained_models import register_weights
from tests.training.incremental.helpers import incremental_body

pytestmark = pytest.mark.both_databases


def _model(client: TestClient, tmp_path: Path, *, dataset: dict | None = None, parent_id: int | None = None,
           task: str = "detect") -> int:
    """A registry row with stand-in weights (nothing here loads them), trained on ``dataset``, from ``parent_id``."""
    weights = tmp_path / "stand-in.pt"
    weights.write_bytes(b"never loaded")
    class_names = dataset["class_names"] if dataset else ["square"]
    model_id = register_weights(client.app, task=task, weights=weights, class_names=class_names,
                                dataset_id=dataset["id"] if dataset else None)
    if parent_id is not None:
        with unit_of_work(client.app.state.session_factory) as session:
            session.execute(update(ModelVersion).where(ModelVersion.id == model_id).values(parent_id=parent_id))
    return model_id


def _finished_task(client: TestClient) -> int:
    """A task row the executor will not pick up (it already failed)."""
    with unit_of_work(client.app.state.session_factory) as session:
        task = Task(kind=TaskKind.training, type="regular", params={}, status=TaskStatus.failed)
        return tasks_repository.add(session, task=task, refs=[]).id


def test_deleted_ids_are_never_handed_out_again(client: TestClient, tmp_path: Path):
    datasets = [register_dataset(client, tmp_path, "detect", train=2, val=1)["id"] for _ in range(2)]
    assert client.delete(f"/api/datasets/{datasets[-1]}").status_code == 200
    assert register_dataset(client, tmp_path, "detect", train=2, val=1)["id"] > datasets[-1]

    models = [_model(client, tmp_path) for _ in range(2)]
    assert client.delete(f"/api/models/{models[-1]}").status_code == 200
    assert _model(client, tmp_path) > models[-1]

    tasks = [_finished_task(client) for _ in range(2)]
    assert client.delete(f"/api/tasks/{tasks[-1]}").status_code == 204
    assert _finished_task(client) > tasks[-1]


def test_a_model_keeps_the_record_of_its_deleted_dataset(client: TestClient, settings: Settings, tmp_path: Path):
    dataset = register_dataset(client, tmp_path, "detect", name="shapes", train=2, val=1)
    first, second = _model(client, tmp_path, dataset=dataset), _model(client, tmp_path, dataset=dataset)
    untouched = _model(client, tmp_path)

    response = client.delete(f"/api/datasets/{dataset['id']}")

    assert response.status_code == 200, response.text
    assert response.json()["notes"] == [
        f"models {first}, {second} were trained on this dataset; they keep its record (name, task, classes) "
        "as lineage"
    ]
    model = client.get(f"/api/models/{first}").json()
    assert model["dataset_id"] == dataset["id"]
    assert model["dataset"] == {"id": dataset["id"], "name": "shapes", "task": "detect",
                                "class_names": dataset["class_names"], "deleted": True, "version": 1}
    assert client.get(f"/api/models/{untouched}").json()["dataset"] is None
    assert stored_folders(settings) == []

    training = client.post("/api/training/regular", json=tiny_training(dataset["id"]))
    assert training.status_code == 404 and "deleted" in training.json()["detail"]
    assert client.delete(f"/api/datasets/{dataset['id']}").status_code == 404
    again = register_dataset(client, tmp_path, "detect", name="shapes", train=2, val=1)
    assert again["id"] > dataset["id"]
    assert client.get(f"/api/models/{first}").json()["dataset"]["deleted"] is True  # still the old record


def test_deleting_the_default_model_says_the_task_has_none(client: TestClient, tmp_path: Path):
    model_id = _model(client, tmp_path)
    other = _model(client, tmp_path, task="pose")
    assert client.post(f"/api/models/{model_id}/default").status_code == 200
    assert client.post(f"/api/models/{other}/default").status_code == 200

    response = client.delete(f"/api/models/{model_id}")

    assert response.status_code == 200, response.text
    assert response.json() == {"id": model_id, "kind": "model", "deleted": True, "notes": [
        f"model {model_id} was the default model for detect; detect now has no default model "
        "(auto-annotation with task=detect will 404 until another model is made default)"
    ]}
    gone = client.get(f"/api/models/{model_id}")
    assert gone.status_code == 404 and f"model {model_id} not found: it was deleted" in gone.json()["detail"]
    assert [m["id"] for m in client.get("/api/models").json()] == [other]
    assert client.post(f"/api/models/{model_id}/default").status_code == 404
    no_default = client.post("/api/auto_annotate", data={"task": "detect"},
                             files=[("files", ("a.jpg", b"not read", "image/jpeg"))])
    assert no_default.status_code == 404 and "no default detect model" in no_default.json()["detail"]
    versions = client.get("/labelstudio/versions").json()["versions"]
    assert not any(version.endswith(f"-{model_id}") for version in versions)
    assert client.delete(f"/api/models/{model_id}").status_code == 404


def test_models_trained_from_a_deleted_model_keep_its_record(client: TestClient, tmp_path: Path):
    parent = _model(client, tmp_path)
    child = _model(client, tmp_path, parent_id=parent)

    response = client.delete(f"/api/models/{parent}")

    assert response.json()["notes"] == [
        f"model {child} was fine-tuned from this model; it keeps its record (name, task, classes) as lineage"
    ]
    model = client.get(f"/api/models/{child}").json()
    assert model["parent_id"] == parent
    assert model["parent"] == {"id": parent, "name": "trained-detect", "task": "detect", "class_names": ["square"],
                               "deleted": True}
    assert client.delete(f"/api/models/{child}").json()["notes"] == []


@pytest.mark.training  # the accepted request queues an incremental training, which then runs
def test_incremental_replay_skips_a_deleted_lineage_dataset(client: TestClient, tmp_path: Path):
    old, kept, new = (register_dataset(client, tmp_path, "detect", name=name, train=4, val=2)
                      for name in ("old", "kept", "new"))
    grandparent = _model(client, tmp_path, dataset=old)
    base = _model(client, tmp_path, dataset=kept, parent_id=grandparent)
    assert client.delete(f"/api/models/{grandparent}").status_code == 200  # its record still names "old"
    assert client.delete(f"/api/datasets/{old['id']}").status_code == 200

    explicit = client.post("/api/training/incremental", json=incremental_body(
        base, new["id"], replay={"source_dataset_ids": [old["id"]]}))
    assert explicit.status_code == 404 and f"replay source dataset {old['id']} not found" in explicit.text

    response = client.post("/api/training/incremental", json=incremental_body(base, new["id"]))
    assert response.status_code == 202, response.text
    report = response.json()["report"]
    assert report["replay_sources"] == [kept["id"]]
    assert f"dataset {old['id']} of the base model's lineage no longer exists; not replayed" in report["warnings"]
    client.post(f"/api/tasks/{response.json()['id']}/cancel")
    wait_until_finished(client, response.json()["id"], timeout=120)  # stand-in weights: it cannot run anyway


@pytest.mark.training
def test_a_trained_model_outlives_its_dataset(client: TestClient, settings: Settings, tmp_path: Path):
    dataset = register_dataset(client, tmp_path, "classify")
    done = wait_until_finished(client, start_training(client, tiny_training(dataset["id"]))["id"])
    assert done["status"] == "succeeded", done["error"]

    response = client.delete(f"/api/datasets/{dataset['id']}")

    assert response.status_code == 200, response.text
    assert response.json()["notes"][0].startswith(f"model {done['model_id']} was trained on this dataset")
    model = client.get(f"/api/models/{done['model_id']}").json()
    assert model["dataset"] == {"id": dataset["id"], "name": dataset["name"], "task": "classify",
                                "class_names": dataset["class_names"], "deleted": True, "version": 1}
    assert client.delete(f"/api/models/{done['model_id']}").json()["notes"] == []
    assert not any((settings.data_dir / "models").rglob("best.pt"))
    assert _model(client, tmp_path) > done["model_id"]
