"""POST /api/training/freeze-strategy over HTTP: validation, a staged task per task type, resume mid-schedule.

What each stage does to weights, BatchNorm statistics and learning rates is checked inside a real run in
test_freeze_staging.py; here the user's view: 422s naming the problem, the schedule in the 202 body, stage
numbers in the metrics, stage changes in the log, the schedule on the registered model.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from imagerec.datasets.synthetic import class_names
from imagerec.training import ultralytics_env
from imagerec.training.starting_point import architecture_yaml
from tests.helpers import (
    api_client,
    leave_as_if_server_crashed,
    register_dataset,
    tiny_training,
    wait_for,
    wait_until_finished,
)
from tests.trained_models import TrainedModel, register_trained_model

URL = "/api/training/freeze-strategy"


def _untrained_weights(settings, task: str) -> Path:
    """A weights file as an admin would drop it in (untrained, so no test pays for training it)."""
    ultralytics_env.configure(settings)
    from ultralytics import YOLO

    path = settings.pretrained_dir / Path(architecture_yaml("yolov8n", task)).with_suffix(".pt").name
    path.parent.mkdir(parents=True, exist_ok=True)
    YOLO(architecture_yaml("yolov8n", task)).save(path)
    return path


def _body(dataset_id: int, *, start: dict | None = None, **fields) -> dict:
    body = tiny_training(dataset_id, **fields)
    if "epochs" not in fields:
        del body["epochs"]  # with stages the total comes from them
    if start is not None:
        del body["architecture"]
        body.update(start)
    return body


def _messages(client, task_id: int) -> list[str]:
    return [line["message"] for line in client.get(f"/api/tasks/{task_id}/logs").json()["lines"]]


def _stage_of(report: dict, epoch: int) -> int:
    return next(s["stage"] for s in report["stages"] if s["epochs"][0] <= epoch <= s["epochs"][1])


# -- validation ------------------------------------------------------------------------------------------------

@pytest.fixture
def detect(client, tmp_path) -> dict:
    return register_dataset(client, tmp_path, "detect")


TWO_STAGES = [{"epochs": 1, "freeze": "backbone"}, {"epochs": 1, "freeze": "none"}]


@pytest.mark.parametrize(("change", "problem"), [
    ({"stages": [{"epochs": 0, "freeze": "backbone"}]}, "greater than or equal to 1"),
    ({"stages": [{"freeze": "backbone"}]}, "Field required"),
    ({"stages": []}, "at least 1 item"),
    ({"stages": [{"epochs": 1, "freeze": [0, 23, 99]}]}, "layer index 23, 99 out of range: the model has 23 layers"),
    ({"stages": [{"epochs": 1, "freeze": 24}]}, "first 24 layers but the model has 23"),
    ({"stages": [{"epochs": 1, "freeze": list(range(23))}]}, "freezes every layer"),
    ({"stages": [{"epochs": 1, "freeze": 23}]}, "freezes every layer"),
    ({"stages": [{"epochs": 1, "freeze": -1}]}, "greater than or equal to 0"),
    ({"stages": [{"epochs": 1, "freeze": "head"}]}, "backbone+neck"),
    ({"stages": [{"epochs": 1, "freeze": "none", "lr_scale": 0}]}, "greater than 0"),
    ({"stages": TWO_STAGES, "preset": "gradual"}, "either 'stages' or 'preset', not both"),
    ({}, "either 'stages' or 'preset'"),
    ({"stages": TWO_STAGES, "epochs": 5}, "epochs (5) does not match the stages' total (2)"),
    ({"preset": "gradual", "epochs": 2}, "preset 'gradual' has 3 stages and needs epochs ≥ 3"),
    ({"preset": "slow"}, "head-then-all"),
])
def test_bad_schedules_are_422_naming_the_problem(client, detect, change, problem):
    response = client.post(URL, json=_body(detect["id"], **change))
    assert response.status_code == 422, response.text
    assert problem in response.text
    assert client.get("/api/tasks").json() == []


def test_layer_range_is_the_starting_models_own(client, settings, tmp_path):
    """Classify has 10 layers (backbone 0-8, head 9); a registered detect model's come from its architecture."""
    classify = register_dataset(client, tmp_path, "classify")
    response = client.post(URL, json=_body(classify["id"], stages=[{"epochs": 1, "freeze": [10]}]))
    assert response.status_code == 422 and "the model has 10 layers (0-9)" in response.json()["detail"]

    detect = register_dataset(client, tmp_path, "detect")
    trained = TrainedModel("detect", _untrained_weights(settings, "detect"), tmp_path, class_names("detect"))
    model_id = register_trained_model(client.app, trained)
    body = _body(detect["id"], start={"base_model_id": model_id}, stages=[{"epochs": 1, "freeze": [22, 23]}])
    response = client.post(URL, json=body)
    assert response.status_code == 422 and "layer index 23 out of range" in response.json()["detail"]


# -- one staged task per task type ----------------------------------------------------------------------------

CASES = {
    # detect: a registered model, fine-tuned with the gradual preset
    "detect": dict(preset="gradual", epochs=3),
    "segment": dict(stages=[{"epochs": 1, "freeze": "backbone+neck", "lr_scale": 2.0},
                            {"epochs": 1, "freeze": [0, 1, 2], "freeze_bn_stats": False}]),
    # classify has no neck: "backbone+neck" is its backbone (layers 0-8), the Classify layer (9) trains
    "classify": dict(stages=[{"epochs": 1, "freeze": "backbone+neck"}, {"epochs": 1, "freeze": "none"}]),
    "pose": dict(preset="head-then-all", epochs=2),
}


def _start_point(client, settings, tmp_path, task: str) -> dict:
    weights = _untrained_weights(settings, task)
    if task != "detect":
        return {"pretrained_weights": weights.name}
    trained = TrainedModel(task, weights, tmp_path, class_names(task))
    return {"base_model_id": register_trained_model(client.app, trained)}


@pytest.mark.training
@pytest.mark.parametrize("task_type", list(CASES))
def test_staged_task_for_each_task_type(client, settings, tmp_path, task_type):
    dataset = register_dataset(client, tmp_path, task_type)
    start = _start_point(client, settings, tmp_path, task_type)
    response = client.post(URL, json=_body(dataset["id"], start=start, **CASES[task_type]))
    assert response.status_code == 202, response.text
    accepted = response.json()
    schedule = accepted["report"]
    assert accepted["type"] == "freeze-strategy" and schedule["warnings"] == []
    assert accepted["progress"]["total_epochs"] == schedule["stages"][-1]["epochs"][1]
    if task_type == "classify":
        assert schedule["layer_groups"] == {"layers": 10, "backbone": "0-8", "neck": "none", "head": "9"}
        assert schedule["stages"][0]["frozen_layers"] == "0-8"

    done = wait_until_finished(client, accepted["id"])
    assert done["status"] == "succeeded", done["error"]
    metrics = client.get(f"/api/training/tasks/{done['id']}/metrics").json()
    assert [row["values"]["stage"] for row in metrics] == [_stage_of(schedule, row["epoch"]) for row in metrics]
    stage_lines = [m for m in _messages(client, done["id"]) if m.startswith("stage ")]
    assert len(stage_lines) == len(schedule["stages"]) and "released layers" in stage_lines[1]
    assert all("lr " in line for line in stage_lines)
    assert done["report"]["stages"] == schedule["stages"] and done["report"]["final_stage"] == len(schedule["stages"])

    model = client.get(f"/api/models/{done['model_id']}").json()
    assert model["training_mode"] == "freeze-strategy" and model["info"]["stages"] == schedule["stages"]
    assert model["info"]["preset"] == CASES[task_type].get("preset")
    assert model["parent_id"] == start.get("base_model_id")


# -- random init, interruption, resume -------------------------------------------------------------------------

def _after_first_epoch(task: dict) -> bool:
    return task["status"] == "running" and (task["progress"]["epoch"] or 0) >= 1


@pytest.mark.training
def test_interrupted_staged_task_resumes_in_the_right_stage(settings, tmp_path):
    stages = [{"epochs": 1, "freeze": "backbone"}, {"epochs": 1, "freeze": 5}, {"epochs": 2, "freeze": "none"}]
    with api_client(settings) as client:
        dataset = register_dataset(client, tmp_path, "detect", train=64)
        response = client.post(URL, json=_body(dataset["id"], batch=4, stages=stages))  # random init: ~2 s epochs
        assert response.status_code == 202, response.text
        task = response.json()
        assert "freezing layers that have not learned anything yet is rarely useful" in task["report"]["warnings"][0]
        running = wait_for(client, task["id"], _after_first_epoch, what="the first epoch")
        assert running["latest_metrics"]["stage"] == _stage_of(task["report"], running["progress"]["epoch"])
        client.post(f"/api/training/tasks/{task['id']}/cancel")
        assert wait_until_finished(client, task["id"])["status"] == "cancelled"
        leave_as_if_server_crashed(client, task["id"])

    with api_client(settings) as client:
        interrupted = client.get(f"/api/training/tasks/{task['id']}").json()
        assert interrupted["status"] == "interrupted"
        resume_epoch = interrupted["progress"]["epoch"] + 1
        assert client.post(f"/api/training/tasks/{task['id']}/resume").status_code == 202
        done = wait_until_finished(client, task["id"])
        assert done["status"] == "succeeded", done["error"]

        metrics = client.get(f"/api/training/tasks/{task['id']}/metrics").json()
        assert [row["epoch"] for row in metrics] == [1, 2, 3, 4]
        assert [row["values"]["stage"] for row in metrics] == [1, 2, 3, 3]
        expected = _stage_of(done["report"], resume_epoch)
        assert expected > 1  # a stage counter restarted by the resume would say 1
        messages = _messages(client, task["id"])
        warnings = [line for line in client.get(f"/api/tasks/{task['id']}/logs").json()["lines"]
                    if line["level"] == "warning" and "rarely useful" in line["message"]]
        assert warnings  # the random-init warning is in the task log too
        resumed = messages[next(i for i, m in enumerate(messages) if f"resumed at epoch {resume_epoch}" in m):]
        assert next(m for m in resumed if m.startswith("stage ")).startswith(f"stage {expected}/3")


@pytest.mark.training
def test_weights_of_unknown_layout_are_checked_when_they_load(client, settings, tmp_path):
    """A weights file named after no packaged YAML: accepted with a note, then refused by the child."""
    dataset = register_dataset(client, tmp_path, "classify")
    _untrained_weights(settings, "classify").rename(settings.pretrained_dir / "custom.pt")
    body = _body(dataset["id"], start={"pretrained_weights": "custom.pt"}, stages=[{"epochs": 1, "freeze": [10]}])
    response = client.post(URL, json=body)
    assert response.status_code == 202, response.text
    assert "unknown until its weights load" in response.json()["report"]["warnings"][0]
    done = wait_until_finished(client, response.json()["id"])
    assert done["status"] == "failed" and "layer index 10 out of range" in done["error"], done["error"]
