"""Cancel (queued, running, finished, twice), a killed worker, interrupted tasks and resume, delete."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from imagerec.db import unit_of_work
from imagerec.tasks.models import Task
from tests.helpers import (
    api_client,
    leave_as_if_server_crashed,
    register_dataset,
    start_training,
    tiny_training,
    wait_for,
    wait_until_finished,
)

pytestmark = pytest.mark.training


def _run_dir(settings, task_id: int) -> Path:
    return settings.data_dir / "runs" / str(task_id)


def _worker_pid(client, task_id: int) -> int:
    with unit_of_work(client.app.state.session_factory) as session:
        return session.get(Task, task_id).worker_pid


def _after_first_epoch(task: dict) -> bool:
    return task["status"] == "running" and (task["progress"]["epoch"] or 0) >= 1


def test_cancel_running_task_stops_at_a_batch_and_keeps_checkpoints(client, settings, tmp_path):
    dataset = register_dataset(client, tmp_path, "detect")
    task = start_training(client, tiny_training(dataset["id"], epochs=300))
    wait_for(client, task["id"], _after_first_epoch, what="the first epoch")

    response = client.post(f"/api/training/tasks/{task['id']}/cancel")
    assert response.status_code == 200 and response.json()["cancel_requested"] is True
    assert client.post(f"/api/training/tasks/{task['id']}/cancel").status_code == 200  # twice is harmless

    done = wait_until_finished(client, task["id"], timeout=60)
    assert done["status"] == "cancelled" and done["model_id"] is None
    assert done["progress"]["epoch"] < 300
    weights = _run_dir(settings, task["id"]) / "train" / "weights"
    assert (weights / "last.pt").is_file()
    assert (_run_dir(settings, task["id"]) / "resume.pt").is_file()
    messages = [line["message"] for line in client.get(f"/api/tasks/{task['id']}/logs").json()["lines"]]
    assert any("cancel seen" in m for m in messages) and "cancelled" in messages[-1]
    assert client.post(f"/api/training/tasks/{task['id']}/cancel").json()["status"] == "cancelled"


def test_cancel_queued_task_is_immediate_and_finished_task_is_409(client, tmp_path):
    dataset = register_dataset(client, tmp_path, "detect")
    first = start_training(client, tiny_training(dataset["id"]))
    queued = start_training(client, tiny_training(dataset["id"]))  # concurrency 1: waits behind the first
    response = client.post(f"/api/training/tasks/{queued['id']}/cancel")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"

    done = wait_until_finished(client, first["id"])
    assert done["status"] == "succeeded"
    conflict = client.post(f"/api/training/tasks/{first['id']}/cancel")
    assert conflict.status_code == 409 and "already finished" in conflict.json()["detail"]
    assert client.get(f"/api/tasks/{queued['id']}").json()["status"] == "cancelled"
    # no checkpoint: resume starts it from the beginning
    assert client.post(f"/api/training/tasks/{queued['id']}/resume").status_code == 202
    assert wait_until_finished(client, queued["id"])["status"] == "succeeded"
    messages = [line["message"] for line in client.get(f"/api/tasks/{queued['id']}/logs").json()["lines"]]
    assert any("no checkpoint yet, so it starts from the beginning" in m for m in messages)


def test_worker_killed_mid_epoch_fails_with_reason_and_api_survives(client, tmp_path):
    dataset = register_dataset(client, tmp_path, "detect")
    task = start_training(client, tiny_training(dataset["id"], epochs=300))
    wait_for(client, task["id"], _after_first_epoch, what="the first epoch")
    os.kill(_worker_pid(client, task["id"]), signal.SIGKILL)

    done = wait_until_finished(client, task["id"], timeout=20)
    assert done["status"] == "failed" and "SIGKILL" in done["error"]
    assert client.get("/health").json()["status"] == "ok"


def test_task_left_running_becomes_interrupted_and_resumes_to_success(settings, tmp_path):
    with api_client(settings) as client:
        dataset = register_dataset(client, tmp_path, "detect", train=64)
        task = start_training(client, tiny_training(dataset["id"], epochs=6, batch=4))
        wait_for(client, task["id"], _after_first_epoch, what="the first epoch")
        client.post(f"/api/training/tasks/{task['id']}/cancel")
        assert wait_until_finished(client, task["id"])["status"] == "cancelled"
        leave_as_if_server_crashed(client, task["id"])

    with api_client(settings) as client:
        interrupted = client.get(f"/api/training/tasks/{task['id']}").json()
        assert interrupted["status"] == "interrupted"
        epochs_before = interrupted["progress"]["epoch"]
        response = client.post(f"/api/training/tasks/{task['id']}/resume")
        assert response.status_code == 202 and response.json()["status"] == "queued"
        done = wait_until_finished(client, task["id"])
        assert done["status"] == "succeeded", done["error"]
        assert done["attempt"] == 2 and done["model_id"] is not None
        metrics = client.get(f"/api/training/tasks/{task['id']}/metrics").json()
        assert [row["epoch"] for row in metrics] == [1, 2, 3, 4, 5, 6]
        messages = [line["message"] for line in client.get(f"/api/tasks/{task['id']}/logs").json()["lines"]]
        expected = ("the checkpoint holds all 6 epochs" if epochs_before == 6  # the cancel landed in the last one
                    else f"resumed at epoch {epochs_before + 1}")
        assert any(expected in m for m in messages), messages


def test_api_stays_responsive_and_running_task_cannot_be_deleted(client, settings, tmp_path):
    dataset = register_dataset(client, tmp_path, "detect")
    task = start_training(client, tiny_training(dataset["id"], epochs=300))
    wait_for(client, task["id"], lambda t: t["status"] == "running", what="running")
    assert client.get("/api/training/tasks").status_code == 200  # latency: benchmarks/api_concurrency.py
    assert client.delete(f"/api/training/tasks/{task['id']}").status_code == 409
    assert client.delete(f"/api/datasets/{dataset['id']}").status_code == 409
    client.post(f"/api/training/tasks/{task['id']}/cancel")
    wait_until_finished(client, task["id"], timeout=60)

    assert client.delete(f"/api/training/tasks/{task['id']}").status_code == 204
    assert client.get(f"/api/training/tasks/{task['id']}").status_code == 404
    assert not _run_dir(settings, task["id"]).exists()


def test_deleting_a_task_keeps_its_model_and_model_delete_removes_weights(client, settings, tmp_path):
    dataset = register_dataset(client, tmp_path, "classify")
    done = wait_until_finished(client, start_training(client, tiny_training(dataset["id"]))["id"])
    assert client.delete(f"/api/tasks/{done['id']}").status_code == 204
    model = client.get(f"/api/models/{done['model_id']}").json()
    assert model["training_task_id"] is None
    weights = settings.data_dir / "models"
    assert any(weights.rglob("best.pt"))
    assert client.delete(f"/api/models/{model['id']}").status_code == 200
    assert client.get(f"/api/models/{model['id']}").status_code == 404
    assert not any(weights.rglob("best.pt"))


@pytest.fixture
def impatient_settings(settings):
    return settings.model_copy(update={"cancel_grace_seconds": 0.05})


def test_task_that_does_not_stop_in_time_is_killed(impatient_settings, tmp_path):
    with api_client(impatient_settings) as client:
        dataset = register_dataset(client, tmp_path, "detect", train=32, imgsz=320)
        # imgsz 320, batch 16: a batch takes over a second here, far longer than the 0.05 s grace period
        task = start_training(client, tiny_training(dataset["id"], epochs=5, imgsz=320, batch=16))
        wait_for(client, task["id"], lambda t: t["status"] == "running" and any(
            "training epochs" in line["message"]
            for line in client.get(f"/api/tasks/{t['id']}/logs").json()["lines"]), what="training to start")
        client.post(f"/api/training/tasks/{task['id']}/cancel")
        done = wait_until_finished(client, task["id"], timeout=20)
        assert done["status"] == "cancelled"
        assert "killed" in done["error"]
        assert client.get("/health").json()["executor"]["active_tasks"] == []
