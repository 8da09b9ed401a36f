"""Helpers the tests share: register a synthetic dataset over HTTP, start a training, wait for states."""

from __future__ import annotations

import time
from pathlib import Path

from fastapi.testclient import TestClient

from imagerec.datasets.synthetic import write_dataset_zip

TERMINAL = {"succeeded", "failed", "cancelled", "interrupted"}
# Every test's server has this admin key (tests/conftest.py puts it in IMAGEREC_ADMIN_KEY); clients send it.
ADMIN_KEY = "irk-test-admin-key"
AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}
BASE_URL = "http://localhost"  # an allowed Host (TestClient's default "testserver" is not)


def api_client(settings_or_app, **options) -> TestClient:
    """A TestClient for ``create_app(settings)`` (or an app) that sends the admin key from an allowed host."""
    from imagerec.app import create_app
    from imagerec.config import Settings

    app = create_app(settings_or_app) if isinstance(settings_or_app, Settings) else settings_or_app
    return TestClient(app, base_url=BASE_URL, headers=AUTH | options.pop("headers", {}), **options)


def register_dataset(client: TestClient, tmp_path: Path, task: str, *, name: str | None = None, **sizes) -> dict:
    archive = write_dataset_zip(task, tmp_path / f"{task}-{time.monotonic_ns()}.zip", **sizes)
    with archive.open("rb") as handle:
        response = client.post(
            "/api/datasets",
            data={"name": name or archive.stem, "task": task},
            files={"file": (archive.name, handle, "application/zip")},
        )
    assert response.status_code == 201, response.text
    return response.json()


def tiny_training(dataset_id: int, **overrides) -> dict:
    return {
        "dataset_id": dataset_id,
        "architecture": "yolov8n",
        "epochs": 1,
        "imgsz": 64,
        "batch": 8,
        "device": "cpu",
        "workers": 0,
        **overrides,
    }


def start_training(client: TestClient, body: dict) -> dict:
    response = client.post("/api/training/regular", json=body)
    assert response.status_code == 202, response.text
    return response.json()


def wait_for(client: TestClient, task_id: int, predicate, *, timeout: float = 180.0, what: str = "") -> dict:
    deadline = time.monotonic() + timeout
    while True:
        task = client.get(f"/api/tasks/{task_id}").json()
        if predicate(task):
            return task
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}: {task}")
        time.sleep(0.2)


def wait_until_finished(client: TestClient, task_id: int, *, timeout: float = 180.0) -> dict:
    return wait_for(client, task_id, lambda t: t["status"] in TERMINAL, timeout=timeout, what="the task to end")


def leave_as_if_server_crashed(client: TestClient, task_id: int) -> None:
    """What a crashed server leaves behind: the row still says running, owned by a process that is gone."""
    import socket

    from sqlalchemy import update

    from imagerec.db import unit_of_work
    from imagerec.tasks.models import Task

    gone = f"local:{socket.gethostname()}:{2**22 + 12345}"  # above Linux's pid_max
    with unit_of_work(client.app.state.session_factory) as session:
        session.execute(update(Task).where(Task.id == task_id).values(status="running", worker=gone, finished_at=None))
