"""Large imports run as a ``dataset_import`` task: 202, progress and log like every task, the dataset registered
when the task succeeds, nothing left behind by a failure or a cancel. The threshold is lowered to a few images."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from imagerec.config import Settings
from imagerec.datasets.synthetic import write_dataset
from tests.datasets.helpers import dataset_zip, upload
from tests.helpers import api_client, wait_until_finished


@pytest.fixture
def large(settings: Settings) -> Settings:
    return settings.model_copy(update={"dataset_import_task_min_images": 8})


@pytest.fixture
def task_client(large: Settings) -> Iterator[TestClient]:
    with api_client(large) as client:
        yield client


def test_a_large_upload_becomes_a_task_that_registers_it(task_client: TestClient, large: Settings, tmp_path: Path):
    accepted = upload(task_client, dataset_zip(tmp_path, "detect", train=8, val=2))

    assert accepted.status_code == 202, accepted.text
    task = wait_until_finished(task_client, accepted.json()["id"])
    assert (task["kind"], task["status"]) == ("dataset_import", "succeeded"), task
    dataset = task_client.get(f"/api/datasets/{task['report']['dataset_id']}").json()
    assert dataset["name"] == "shapes" and dataset["splits"]["train"]["images"] == 8
    logs = [line["message"] for line in task_client.get(f"/api/tasks/{task['id']}/logs").json()["lines"]]
    assert any("registered dataset" in message for message in logs)
    assert not (large.data_dir / "runs" / str(task["id"]) / "upload.zip").exists()


def test_a_small_upload_still_answers_201(task_client: TestClient, tmp_path: Path):
    assert upload(task_client, dataset_zip(tmp_path, "detect", train=4, val=2)).status_code == 201


def test_an_invalid_large_import_fails_with_its_problems_logged(task_client: TestClient, large: Settings,
                                                                allowed_root: Path):
    source = write_dataset("detect", allowed_root / "big", train=8, val=2, imgsz=32)
    (source / "labels" / "train" / "train_0001.txt").write_text("9 0.5 0.5 0.2 0.2\n")

    accepted = task_client.post("/api/datasets/import-path", json={"name": "big", "task": "detect", "path": "big"})

    assert accepted.status_code == 202, accepted.text
    task = wait_until_finished(task_client, accepted.json()["id"])
    assert task["status"] == "failed" and "dataset is invalid" in task["error"]
    logs = [line["message"] for line in task_client.get(f"/api/tasks/{task['id']}/logs").json()["lines"]]
    assert any("labels/train/train_0001.txt:1" in message for message in logs)
    assert task_client.get("/api/datasets").json() == []
    assert list((large.data_dir / "datasets").iterdir()) == []


def test_a_cancelled_import_leaves_nothing(task_client: TestClient, large: Settings, tmp_path: Path):
    accepted = upload(task_client, dataset_zip(tmp_path, "detect", train=8, val=2))
    cancel = task_client.post(f"/api/tasks/{accepted.json()['id']}/cancel")

    task = wait_until_finished(task_client, accepted.json()["id"])

    assert cancel.status_code in (200, 202), cancel.text
    assert task["status"] in ("cancelled", "succeeded"), task  # a cancel can come after the import ended
    if task["status"] == "cancelled":
        assert task_client.get("/api/datasets").json() == []
        assert list((large.data_dir / "datasets").iterdir()) == []
