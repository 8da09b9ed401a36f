"""End to end over HTTP for each task type: register, train for real, follow logs (poll and SSE), see
per-epoch metrics, get a registered model whose weights load and predict."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.helpers import register_dataset, start_training, tiny_training, wait_until_finished

pytestmark = pytest.mark.training


def _poll_all_logs(client, task_id: int) -> list[dict]:
    lines, after = [], 0
    while True:
        page = client.get(f"/api/training/tasks/{task_id}/logs", params={"after": after, "limit": 3}).json()
        lines += page["lines"]
        if not page["lines"]:
            return lines
        after = page["next_after"]


def _sse_events(client, task_id: int) -> list[tuple[str, dict]]:
    events, name = [], None
    with client.stream("GET", f"/api/training/tasks/{task_id}/logs/stream") as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        for raw in response.iter_lines():
            if raw.startswith("event: "):
                name = raw.removeprefix("event: ")
            elif raw.startswith("data: "):
                events.append((name, json.loads(raw.removeprefix("data: "))))
    return events


@pytest.mark.parametrize("task_type", ["detect", "segment", "classify", "pose"])
def test_train_each_task_type_end_to_end(client, tmp_path, task_type):
    dataset = register_dataset(client, tmp_path, task_type)
    task = start_training(client, tiny_training(dataset["id"], epochs=2, name=f"tiny-{task_type}"))
    assert task["status"] == "queued" and task["progress"]["total_epochs"] == 2

    events = _sse_events(client, task["id"])  # follows live from the start and ends when the task ends
    assert events[-1][0] == "end" and events[-1][1]["status"] == "succeeded", events[-3:]
    streamed = [data["message"] for name, data in events if name == "log"]

    done = wait_until_finished(client, task["id"])
    assert done["status"] == "succeeded", done["error"]
    assert done["progress"]["percent"] == 100.0 and done["progress"]["epoch"] == 2

    polled = _poll_all_logs(client, task["id"])
    assert [line["message"] for line in polled] == streamed
    assert [line["seq"] for line in polled] == sorted(line["seq"] for line in polled)
    assert any(message.startswith("epoch 2/2") for message in streamed)
    assert not any("\x1b" in message or "\r" in message for message in streamed)

    metrics = client.get(f"/api/training/tasks/{task['id']}/metrics").json()
    assert [row["epoch"] for row in metrics] == [1, 2]
    score = "top1" if task_type == "classify" else "mAP50-95"
    assert all(score in row["values"] and "lr" in row["values"] for row in metrics)

    model = client.get(f"/api/models/{done['model_id']}").json()
    assert model["task"] == task_type and model["class_names"] == dataset["class_names"]
    assert model["dataset_id"] == dataset["id"] and model["training_task_id"] == task["id"]
    assert model["imgsz"] == 64 and model["architecture"] == "yolov8n" and score in model["metrics"]
    assert model["name"] == f"tiny-{task_type}"

    weights = client.get(f"/api/models/{model['id']}/weights")
    assert weights.status_code == 200
    weights_path = tmp_path / "downloaded.pt"
    weights_path.write_bytes(weights.content)
    from ultralytics import YOLO

    yolo = YOLO(str(weights_path))
    assert yolo.task == task_type
    result = yolo.predict(np.zeros((64, 64, 3), dtype=np.uint8), imgsz=64, verbose=False)[0]
    assert result.names == dict(enumerate(dataset["class_names"]))


def test_fine_tune_from_registered_model_records_parent(client, tmp_path):
    dataset = register_dataset(client, tmp_path, "detect")
    first = wait_until_finished(client, start_training(client, tiny_training(dataset["id"]))["id"])
    body = tiny_training(dataset["id"], base_model_id=first["model_id"])
    del body["architecture"]
    second = wait_until_finished(client, start_training(client, body)["id"])
    assert second["status"] == "succeeded", second["error"]
    model = client.get(f"/api/models/{second['model_id']}").json()
    assert model["parent_id"] == first["model_id"] and model["architecture"] == "yolov8n"


def test_train_from_pretrained_weights_in_the_models_folder(client, settings, tmp_path):
    dataset = register_dataset(client, tmp_path, "detect")
    first = wait_until_finished(client, start_training(client, tiny_training(dataset["id"]))["id"])
    weights = client.get(f"/api/models/{first['model_id']}/weights").content
    (settings.pretrained_dir / "yolov8n.pt").write_bytes(weights)  # what an admin drops into the folder

    body = tiny_training(dataset["id"], pretrained_weights="yolov8n.pt", optimizer="SGD", lr0=0.02)
    del body["architecture"]
    done = wait_until_finished(client, start_training(client, body)["id"])
    assert done["status"] == "succeeded", done["error"]
    model = client.get(f"/api/models/{done['model_id']}").json()
    assert model["architecture"] == "yolov8n" and model["parent_id"] is None
    first_epoch = client.get(f"/api/training/tasks/{done['id']}/metrics").json()[0]["values"]
    assert first_epoch["lr"] <= 0.02


def test_pretrained_weights_of_another_task_fail_with_a_clear_reason(client, settings, tmp_path):
    classify = register_dataset(client, tmp_path, "classify")
    first = wait_until_finished(client, start_training(client, tiny_training(classify["id"]))["id"])
    (settings.pretrained_dir / "cls.pt").write_bytes(client.get(f"/api/models/{first['model_id']}/weights").content)
    detect = register_dataset(client, tmp_path, "detect")
    body = tiny_training(detect["id"], pretrained_weights="cls.pt")
    del body["architecture"]
    done = wait_until_finished(client, start_training(client, body)["id"])
    assert done["status"] == "failed" and "classify model" in done["error"] and "detect" in done["error"]
