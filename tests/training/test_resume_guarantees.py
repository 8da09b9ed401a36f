"""After any cancel, failure or interruption, resume ends with a registered model; the log says what the
checkpoint holds; the task record shows honest progress, ETA, errors and the optimizer really used."""

from __future__ import annotations

import re
import shutil

import pytest
from sqlalchemy import update

from imagerec.db import unit_of_work
from imagerec.tasks.models import Task
from tests.helpers import register_dataset, start_training, tiny_training, wait_for, wait_until_finished

pytestmark = pytest.mark.training


def _messages(client, task_id: int) -> list[str]:
    return [line["message"] for line in client.get(f"/api/tasks/{task_id}/logs?limit=5000").json()["lines"]]


def _cancel_when_training(client, task_id: int) -> None:
    wait_for(client, task_id, lambda t: any("training epochs" in m for m in _messages(client, task_id)),
             what="the training loop to start")
    assert client.post(f"/api/tasks/{task_id}/cancel").status_code == 200


def _resume_to_success(client, task_id: int) -> dict:
    response = client.post(f"/api/tasks/{task_id}/resume")
    assert response.status_code == 202, response.text
    done = wait_until_finished(client, task_id)
    assert done["status"] == "succeeded", done["error"]
    assert done["model_id"] is not None
    assert client.get(f"/api/models/{done['model_id']}").status_code == 200
    return done


def test_cancel_in_the_only_epoch_then_resume_registers_the_model(client, tmp_path):
    dataset = register_dataset(client, tmp_path, "detect", train=64)
    task = start_training(client, tiny_training(dataset["id"], epochs=1, batch=2))
    _cancel_when_training(client, task["id"])
    cancelled = wait_until_finished(client, task["id"])
    assert cancelled["status"] == "cancelled"
    assert cancelled["progress"]["percent"] < 100  # the epoch was cut short
    assert cancelled["progress"]["eta_seconds"] is None
    assert any(re.search(r"cancel seen in epoch 1/1 after \d+ of 32 batches", m) for m in _messages(client, task["id"]))

    done = _resume_to_success(client, task["id"])
    messages = _messages(client, task["id"])
    assert any("the checkpoint holds all 1 epochs" in m for m in messages), messages
    assert done["progress"]["percent"] == 100 and done["latest_metrics"]


def test_cancel_mid_run_then_resume_says_where_it_continues(client, tmp_path):
    dataset = register_dataset(client, tmp_path, "classify", train=32)
    task = start_training(client, tiny_training(dataset["id"], epochs=3, batch=2))
    _cancel_when_training(client, task["id"])
    assert wait_until_finished(client, task["id"])["status"] == "cancelled"
    _resume_to_success(client, task["id"])
    messages = _messages(client, task["id"])
    held = [m for m in messages if "the checkpoint holds" in m]
    assert held, messages
    stopped_in = int(re.search(r"cancel seen in epoch (\d+)/3", " ".join(messages)).group(1))
    if stopped_in < 3:
        assert f"the checkpoint holds epoch {stopped_in} of 3" in held[0]
        assert f"training continues at epoch {stopped_in + 1}" in held[0]


def test_a_failed_task_with_a_checkpoint_can_be_resumed(client, settings, tmp_path):
    dataset = register_dataset(client, tmp_path, "classify", train=16)
    task = start_training(client, tiny_training(dataset["id"], epochs=2))
    done = wait_until_finished(client, task["id"])
    assert done["status"] == "succeeded"
    # what a task looks like when its final database write failed after training: failed, checkpoint on disk
    with unit_of_work(client.app.state.session_factory) as session:
        session.execute(update(Task).where(Task.id == task["id"]).values(status="failed", error="OperationalError"))
    client.delete(f"/api/models/{done['model_id']}")
    assert (settings.data_dir / "runs" / str(task["id"]) / "resume.pt").is_file()
    resumed = _resume_to_success(client, task["id"])
    assert resumed["model_id"] != done["model_id"]


def test_a_cancel_seen_at_start_ends_at_once(client, tmp_path):
    dataset = register_dataset(client, tmp_path, "detect")
    first = start_training(client, tiny_training(dataset["id"], epochs=300))
    second = start_training(client, tiny_training(dataset["id"], imgsz=640))
    wait_for(client, first["id"], lambda t: t["status"] == "running", what="the first to run")
    # the second is claimed the moment the first ends; flag it so the flag is there when its child starts
    with unit_of_work(client.app.state.session_factory) as session:
        session.execute(update(Task).where(Task.id == second["id"]).values(cancel_requested=True))
    client.post(f"/api/tasks/{first['id']}/cancel")
    done = wait_until_finished(client, second["id"])
    assert done["status"] == "cancelled"
    messages = _messages(client, second["id"])
    assert any("cancelled before it started" in m for m in messages), messages
    assert not any("setup done" in m or "training epochs" in m for m in messages)


def test_failure_is_one_line_without_colour_codes_and_the_traceback_is_logged(client, settings, tmp_path):
    dataset = register_dataset(client, tmp_path, "detect")
    # images gone from under a registered dataset: Ultralytics fails with a long, coloured, multi-line message
    (val_images,) = (settings.data_dir / "datasets").glob("*/files/images/val")
    shutil.rmtree(val_images)
    task = start_training(client, tiny_training(dataset["id"]))
    done = wait_until_finished(client, task["id"])
    assert done["status"] == "failed"
    assert "\n" not in done["error"] and "\x1b" not in done["error"]
    assert str(settings.data_dir) not in done["error"]
    lines = client.get(f"/api/tasks/{task['id']}/logs").json()["lines"]
    (trace,) = [line["message"] for line in lines if line["message"].startswith("traceback:")]
    assert str(settings.data_dir) not in trace
    assert all("\x1b" not in line["message"] for line in lines)


@pytest.mark.parametrize("optimizer, lr0, used_as_given", [("auto", 0.05, False), ("AdamW", 0.003, True)])
def test_the_optimizer_and_learning_rate_used_are_logged_and_recorded(client, tmp_path, optimizer, lr0,
                                                                      used_as_given):
    dataset = register_dataset(client, tmp_path, "classify", train=16)
    task = start_training(client, tiny_training(dataset["id"], optimizer=optimizer, lr0=lr0))
    done = wait_until_finished(client, task["id"])
    assert done["status"] == "succeeded", done["error"]
    used = done["report"]["optimizer"]
    assert used["requested"] == optimizer and used["lr0_used_as_given"] is used_as_given
    if used_as_given:
        assert used["name"] == "AdamW" and used["lr0"] == pytest.approx(lr0)
    else:
        assert used["lr0"] != pytest.approx(lr0)
    setup = next(m for m in _messages(client, task["id"]) if m.startswith("setup done"))
    assert f"optimizer {used['name']} with lr0" in setup
    assert ("ignores the requested lr0" in setup) is not used_as_given
