"""POST /api/training/distillation over HTTP: tiny real runs for detect and classify, the teacher/student checks,
cancel and resume mid-run."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers import register_dataset, tiny_training, wait_for, wait_until_finished
from tests.training.distill.conftest import register_model

URL = "/api/training/distillation"
TERMS = {"detect": ["kd_cls", "kd_box", "kd_feature", "consistency"],
         "classify": ["kd_cls", "kd_feature", "consistency"]}


def _start(client, body: dict) -> dict:
    response = client.post(URL, json=body)
    assert response.status_code == 202, response.text
    return response.json()


def _teacher_id(client, teachers, task: str) -> int:
    teacher = teachers(task)
    return register_model(client.app, task=task, weights=teacher.weights, class_names=teacher.class_names)


@pytest.mark.training
@pytest.mark.parametrize("task_type", ["detect", "classify"])
def test_distill_end_to_end(client, tmp_path, teachers, task_type):
    teacher_id = _teacher_id(client, teachers, task_type)
    dataset = register_dataset(client, tmp_path, task_type, train=16, val=8)
    losses = {"consistency": {"weight": 0.5}, "feature": {"weight": 1.0, "method": "mse"}}
    task = _start(client, tiny_training(dataset["id"], epochs=2, teacher_model_id=teacher_id, losses=losses))
    assert task["report"]["teacher"] == {"id": teacher_id, "architecture": "yolov8s"}

    done = wait_until_finished(client, task["id"])
    assert done["status"] == "succeeded", done["error"]
    metrics = client.get(f"/api/training/tasks/{task['id']}/metrics").json()
    assert [row["epoch"] for row in metrics] == [1, 2]
    assert all(row["values"][f"train_{term}"] > 0 for row in metrics for term in TERMS[task_type])
    # Validation runs the EMA student with its own criterion (no teacher): no val column for a distillation term,
    # and none of the val columns left is 0 in every epoch.
    val_columns = {key for row in metrics for key in row["values"] if key.startswith("val_")}
    assert val_columns and not val_columns & {f"val_{term}" for term in TERMS[task_type]}, val_columns
    assert all(any(row["values"][key] for row in metrics) for key in val_columns), metrics
    lines = [line["message"] for line in client.get(f"/api/tasks/{task['id']}/logs").json()["lines"]]
    assert any(m.startswith("epoch 2/2") and "train_kd_cls" in m and "train_consistency" in m for m in lines)

    score = "top1" if task_type == "classify" else "mAP50-95"
    report = done["report"]
    assert score in report["teacher"]["metrics"] and score in report["student"]["metrics"]
    assert report["teacher"]["id"] == teacher_id

    model = client.get(f"/api/models/{done['model_id']}").json()
    assert model["training_mode"] == "distillation" and model["architecture"] == "yolov8n"
    assert model["info"]["teacher"] == {"id": teacher_id, "architecture": "yolov8s"}
    assert model["info"]["losses"]["consistency"]["weight"] == 0.5
    assert model["info"]["losses"]["cls"] == {"weight": 1.0, "temperature": 1.0}  # defaults filled in

    weights = tmp_path / "student.pt"
    weights.write_bytes(client.get(f"/api/models/{model['id']}/weights").content)
    from ultralytics import YOLO

    result = YOLO(str(weights)).predict(np.zeros((64, 64, 3), dtype=np.uint8), imgsz=64, verbose=False)[0]
    assert result.names == dict(enumerate(dataset["class_names"]))


def test_teacher_must_exist_and_match_the_dataset(client, tmp_path, teachers):
    detect = register_dataset(client, tmp_path, "detect", train=4, val=2)
    body = tiny_training(detect["id"], teacher_model_id=999)
    assert client.post(URL, json=body).status_code == 404

    weights = teachers("detect").weights  # the file is never loaded by these checks
    classify_teacher = register_model(client.app, task="classify", weights=weights,
                                      class_names=detect["class_names"])
    response = client.post(URL, json=tiny_training(detect["id"], teacher_model_id=classify_teacher))
    assert response.status_code == 422
    assert "teacher" in response.json()["detail"] and "classify model" in response.json()["detail"]

    renamed = register_model(client.app, task="detect", weights=weights, class_names=["a", "b", "c"])
    response = client.post(URL, json=tiny_training(detect["id"], teacher_model_id=renamed))
    assert response.status_code == 422
    assert "['a', 'b', 'c']" in response.json()["detail"] and "same class names" in response.json()["detail"]

    good = register_model(client.app, task="detect", weights=weights, class_names=detect["class_names"])
    body = tiny_training(detect["id"], teacher_model_id=good, base_model_id=renamed)
    del body["architecture"]
    response = client.post(URL, json=body)
    assert response.status_code == 422 and "student" in response.json()["detail"]

    bad_losses = tiny_training(detect["id"], teacher_model_id=good, losses={"feature": {"method": "l1"}})
    assert client.post(URL, json=bad_losses).status_code == 422


def test_distillation_needs_a_term_that_is_on(client, tmp_path):
    weights = tmp_path / "teacher.pt"
    weights.write_bytes(b"never loaded: the checks read the registry rows only")
    detect = register_dataset(client, tmp_path, "detect", train=4, val=2)
    teacher = register_model(client.app, task="detect", weights=weights, class_names=detect["class_names"])
    off = {term: {"weight": 0} for term in ("cls", "box", "feature", "consistency")}
    response = client.post(URL, json=tiny_training(detect["id"], teacher_model_id=teacher, losses=off))
    assert response.status_code == 422, response.text
    assert "at least one distillation term must have weight > 0" in response.text

    classify = register_dataset(client, tmp_path, "classify", train=4, val=2)
    classify_teacher = register_model(client.app, task="classify", weights=weights,
                                      class_names=classify["class_names"])
    box_only = off | {"box": {"weight": 1.0}}  # classification has no boxes: this too would be plain training
    response = client.post(URL, json=tiny_training(classify["id"], teacher_model_id=classify_teacher,
                                                   losses=box_only))
    assert response.status_code == 422, response.text
    assert "box" in response.json()["detail"] and "classify" in response.json()["detail"]


def _after_first_epoch(task: dict) -> bool:
    return task["status"] == "running" and (task["progress"]["epoch"] or 0) >= 1


@pytest.mark.training
def test_cancel_during_distillation_then_resume_keeps_the_adapters(client, tmp_path, teachers):
    teacher_id = _teacher_id(client, teachers, "detect")
    dataset = register_dataset(client, tmp_path, "detect", train=32, val=4)
    task = _start(client, tiny_training(dataset["id"], epochs=4, batch=4, teacher_model_id=teacher_id))
    wait_for(client, task["id"], _after_first_epoch, what="the first epoch")
    assert client.post(f"/api/training/tasks/{task['id']}/cancel").status_code == 200
    cancelled = wait_until_finished(client, task["id"], timeout=60)
    assert cancelled["status"] == "cancelled" and cancelled["model_id"] is None

    assert client.post(f"/api/training/tasks/{task['id']}/resume").status_code == 202
    done = wait_until_finished(client, task["id"])
    assert done["status"] == "succeeded", done["error"]
    lines = [line["message"] for line in client.get(f"/api/tasks/{task['id']}/logs").json()["lines"]]
    assert any("feature adapters) restored" in m for m in lines)
    epochs = [row["epoch"] for row in client.get(f"/api/training/tasks/{task['id']}/metrics").json()]
    assert epochs[-1] == 4 and "mAP50-95" in done["report"]["student"]["metrics"]


@pytest.mark.training
def test_a_distillation_cancelled_in_its_only_epoch_resumes_to_a_registered_student(client, tmp_path, teachers):
    teacher_id = _teacher_id(client, teachers, "detect")
    dataset = register_dataset(client, tmp_path, "detect", train=64, val=8)
    task = _start(client, tiny_training(dataset["id"], epochs=1, batch=2, teacher_model_id=teacher_id))
    logs = f"/api/tasks/{task['id']}/logs"
    wait_for(client, task["id"], lambda _t: any("training epochs" in line["message"]
                                                for line in client.get(logs).json()["lines"]), what="training")
    client.post(f"/api/tasks/{task['id']}/cancel")
    assert wait_until_finished(client, task["id"])["status"] == "cancelled"

    assert client.post(f"/api/tasks/{task['id']}/resume").status_code == 202
    done = wait_until_finished(client, task["id"])
    assert done["status"] == "succeeded", done["error"]
    assert "mAP50-95" in done["report"]["teacher"]["metrics"] and "mAP50-95" in done["report"]["student"]["metrics"]
    model = client.get(f"/api/models/{done['model_id']}").json()
    assert model["training_mode"] == "distillation" and model["architecture"] == "yolov8n"
    assert any("the checkpoint holds all 1 epochs" in line["message"] for line in client.get(logs).json()["lines"])
