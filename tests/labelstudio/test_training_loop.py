"""Label Studio's "Start training" over HTTP, against a fake Label Studio that speaks 1.23's shapes (a personal
access token, the project export, uploaded images): a task pulls the annotations into a dataset version, trains,
measures the new model against the project's, and keeps it as the project's model or sets it aside."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from imagerec.config import Settings
from tests.helpers import api_client, wait_for, wait_until_finished
from tests.labelstudio.fake_label_studio import FakeLabelStudio
from tests.labelstudio.test_predict import BOXES, LABELS
from tests.trained_models import register_trained_model

pytestmark = pytest.mark.training

CONFIG = BOXES.format(threshold="")
EXPORT = "/api/projects/1/export?exportType=JSON"
FINE_TUNE = {"epochs": 1, "imgsz": 64, "batch": 8, "workers": 0, "device": "cpu"}
TRAINING = {**FINE_TUNE, "architecture": "yolov8n"}


def _region(line: str, class_names: list[str]) -> dict:
    class_id, cx, cy, w, h = line.split()
    cx, cy, w, h = (float(value) * 100 for value in (cx, cy, w, h))
    return {"id": f"r{cx:.0f}", "from_name": "boxes", "to_name": "img", "type": "rectanglelabels",
            "original_width": 64, "original_height": 64,
            "value": {"x": cx - w / 2, "y": cy - h / 2, "width": w, "height": h, "rotation": 0,
                      "rectanglelabels": [LABELS[class_names[int(class_id)]]]}}


def serve_project(label_studio: FakeLabelStudio, dataset_dir: Path, class_names: list[str], count: int) -> list:
    """The first ``count`` training images as Label Studio tasks, each with a submitted annotation; one more
    task whose annotation was cancelled, and one whose image is gone."""
    tasks = []
    for index, image in enumerate(sorted((dataset_dir / "images" / "train").iterdir())[:count], start=1):
        label = dataset_dir / "labels" / "train" / f"{image.stem}.txt"
        result = [_region(line, class_names) for line in label.read_text().splitlines() if line.strip()]
        reference = f"/data/upload/1/{index:08x}-{image.name}"
        label_studio.files[reference] = image.read_bytes()
        tasks.append({"id": index, "data": {"image": reference}, "annotations": [
            {"id": 10 * index, "result": [], "was_cancelled": False, "updated_at": "2026-12-01T10:00:00Z"},
            {"id": 10 * index + 1, "result": result, "was_cancelled": False, "updated_at": "2026-12-02T10:00:00Z"}]})
    tasks.append({"id": 900, "data": {"image": "/data/upload/1/00000900-x.png"},
                  "annotations": [{"id": 9000, "result": [], "was_cancelled": True}]})
    tasks.append({"id": 901, "data": {"image": "/data/upload/1/00000901-gone.png"},
                  "annotations": [{"id": 9010, "result": tasks[0]["annotations"][1]["result"]}]})
    label_studio.files[EXPORT] = json.dumps(tasks).encode()
    return tasks


def _start(client, extra: dict, label_studio: FakeLabelStudio) -> dict:
    setup = client.post("/labelstudio/setup", json={"project": "1.1718000000", "schema": CONFIG,
                                                    "hostname": label_studio.url, "extra_params": extra})
    assert setup.status_code == 200, setup.text
    answer = client.post("/labelstudio/webhook", json={"action": "START_TRAINING",
                                                       "project": {"id": 1, "label_config": CONFIG}})
    assert answer.status_code == 200 and answer.json()["status"] == "queued", answer.text
    again = client.post("/labelstudio/train", json={"project": "1.1718000000", "annotations": []})
    assert again.json()["status"] == "running" and again.json()["task_id"] == answer.json()["task_id"]
    task = wait_until_finished(client, answer.json()["task_id"], timeout=400)
    assert task["status"] == "succeeded", _logs(client, task)
    return task["report"]["loop"]


def _logs(client, task: dict) -> str:
    """The loop task's log and its training's last lines: what a failure needs."""
    lines = [entry["message"] for entry in client.get(f"/api/tasks/{task['id']}/logs").json()["lines"]]
    sub = ((task.get("report") or {}).get("loop") or {}).get("training_task_id")
    if sub:
        lines += [entry["message"] for entry in client.get(f"/api/tasks/{sub}/logs").json()["lines"]][-8:]
    return "\n".join(lines)


def test_start_training_keeps_a_worse_model_aside_and_promotes_a_better_one(tmp_path: Path, trained_models):
    trained = trained_models("detect")
    with FakeLabelStudio() as label_studio:
        tasks = serve_project(label_studio, trained.dataset_dir, trained.class_names, count=20)
        settings = Settings(data_dir=tmp_path / "data", executor_poll_seconds=0.2, default_workers=0,
                            training_plots=False)
        with api_client(settings) as client:
            registered = client.post("/api/labelstudio/connections",
                                     json={"url": label_studio.url, "token": label_studio.personal_token})
            assert registered.json()["token_kind"] == "personal"
            good = register_trained_model(client.app, trained, name="good")
            client.post(f"/api/models/{good}/default")

            # 1. a model trained from scratch for one epoch is worse than the project's model: set aside
            first = _start(client, {"mode": "regular", **TRAINING}, label_studio)
            decision = first["decision"]
            assert decision["promoted"] is False and decision["against_model_id"] == good
            assert decision["regressed_classes"], decision
            project = client.get("/api/labelstudio/projects/1").json()
            assert project["model_id"] == good and project["decision"]["model_id"] == decision["model_id"]
            assert first["pulled"]["annotated"] == 21 and first["pulled"]["failed"] == 1  # 20 + the gone image
            dataset = client.get(f"/api/datasets/{first['dataset_id']}").json()
            assert dataset["class_names"] == trained.class_names  # Label Studio's labels mapped back to classes
            assert dataset["splits"]["train"]["images"] + dataset["splits"]["val"]["images"] == 20
            for key in ("training_task_id", "evaluation_task_id"):
                assert client.get(f"/api/tasks/{first[key]}").json()["status"] == "succeeded"
            assert client.get(f"/api/models/{decision['model_id']}").json()["dataset"]["id"] == first["dataset_id"]

            # 2. the set-aside model is made the project's; a short fine-tune of the good one beats it
            assert client.put("/api/labelstudio/projects/1/model",
                              json={"model_id": decision["model_id"]}).status_code == 200
            tasks[0]["annotations"].append({"id": 5, "result": tasks[1]["annotations"][1]["result"],
                                            "was_cancelled": False, "updated_at": "2026-12-03T10:00:00Z"})
            label_studio.files[EXPORT] = json.dumps(tasks).encode()
            second = _start(client, {"mode": "regular", **FINE_TUNE, "base_model_id": good,
                                     "optimizer": "AdamW", "lr0": 0.0001}, label_studio)
            assert second["decision"]["promoted"] is True, second["decision"]
            assert second["decision"]["against_model_id"] == decision["model_id"]
            assert second["pulled"]["images_kept"] == 20 and second["pulled"]["images_fetched"] == 0
            version = client.get(f"/api/datasets/{second['dataset_id']}").json()
            assert (version["version"], version["parent_id"]) == (2, first["dataset_id"])
            diff = client.get(f"/api/datasets/{second['dataset_id']}/diff", params={"from": first["dataset_id"]})
            assert diff.json()["counts"]["relabelled"] == 1
            setup = client.post("/labelstudio/setup", json={"project": "1.1718000000", "schema": CONFIG,
                                                            "hostname": label_studio.url})
            assert setup.json()["model_version"] == f"imagerec-model-{second['model_id']}"
    assert len(label_studio.issued) >= 1  # the personal access token was exchanged, never sent as such
    assert all(r.authorization in (None, *(f"Bearer {a}" for a in label_studio.issued))
               for r in label_studio.requests)


def test_a_cancelled_loop_stops_its_training_and_resumes_to_a_decision(tmp_path: Path, trained_models):
    trained = trained_models("detect")
    with FakeLabelStudio() as label_studio:
        serve_project(label_studio, trained.dataset_dir, trained.class_names, count=16)
        settings = Settings(data_dir=tmp_path / "data", executor_poll_seconds=0.2, default_workers=0,
                            training_plots=False)
        with api_client(settings) as client:
            client.post("/api/labelstudio/connections", json={"url": label_studio.url, "token": label_studio.token})
            good = register_trained_model(client.app, trained, name="good")
            client.post(f"/api/models/{good}/default")
            client.post("/labelstudio/setup", json={"project": "1.1718000000", "schema": CONFIG,
                                                    "hostname": label_studio.url,
                                                    "extra_params": {**FINE_TUNE, "epochs": 12}})  # incremental
            loop_id = client.post("/labelstudio/webhook", json={"action": "START_TRAINING",
                                                                "project": {"id": 1}}).json()["task_id"]
            training_id = wait_for(client, loop_id, lambda t: ((t.get("report") or {}).get("loop") or {}).get(
                "training_task_id"), timeout=120, what="the loop's training")["report"]["loop"]["training_task_id"]
            wait_for(client, training_id, lambda t: ((t.get("progress") or {}).get("epoch") or 0) >= 1, timeout=120,
                     what="an epoch")
            assert client.post(f"/api/tasks/{loop_id}/cancel").status_code == 200

            assert wait_until_finished(client, loop_id, timeout=120)["status"] == "cancelled"
            training = wait_until_finished(client, training_id, timeout=120)
            assert training["status"] == "cancelled" and training["model_id"] is None
            assert client.post(f"/api/tasks/{loop_id}/resume").status_code == 202
            resumed = wait_until_finished(client, loop_id, timeout=400)

            assert resumed["status"] == "succeeded", _logs(client, resumed)
            loop = resumed["report"]["loop"]
            assert loop["training_task_id"] == training_id  # the same training, continued from its checkpoint
            assert client.get(f"/api/tasks/{training_id}").json()["status"] == "succeeded"
            assert loop["decision"]["model_id"] == client.get(f"/api/tasks/{training_id}").json()["model_id"]
            assert loop["decision"]["against_model_id"] == good
