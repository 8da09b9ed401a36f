"""POST /api/training/incremental end to end: tiny real trainings from a base model that learned the shapes."""

from __future__ import annotations

import os
from pathlib import Path

from tests.helpers import register_dataset, wait_for, wait_until_finished
from tests.training.incremental.helpers import URL, base_with_lineage, incremental_body


def _logs(client, task_id: int) -> list[str]:
    return [line["message"] for line in client.get(f"/api/tasks/{task_id}/logs").json()["lines"]]


def _label_ids(folder: Path) -> set[int]:
    return {int(line.split()[0]) for path in folder.glob("*.txt") for line in path.read_text().splitlines() if line}


def test_detect_adds_a_class_keeps_ids_and_reports_retention(client, settings, tmp_path, trained_models):
    base_id, old_data = base_with_lineage(client, tmp_path, trained_models, "detect")
    new_data = register_dataset(client, tmp_path, "detect", name="new", train=16, val=8, seed=5,
                                classes=["triangle", "cross"], hidden=["square", "circle"])

    response = client.post(URL, json=incremental_body(base_id, new_data["id"]))
    assert response.status_code == 202, response.text
    started = response.json()
    assert started["report"]["classes"] == ["square", "circle", "triangle", "cross"]
    assert started["report"]["added_classes"] == ["cross"] and started["report"]["extended_classes"] == ["triangle"]
    assert started["report"]["new_dataset_class_ids"] == [2, 3]
    assert started["report"]["replay_sources"] == [old_data["id"]]

    done = wait_until_finished(client, started["id"], timeout=240)
    assert done["status"] == "succeeded", _logs(client, started["id"])[-5:]
    report = done["report"]
    assert report["replay_images"] == 16 and report["pseudo_labels"] >= 1  # hidden old shapes found by the base
    evaluation = report["evaluation"]
    assert evaluation["base_old_classes"]["map50_95"] > 0.3  # the base model really knows the old classes
    assert evaluation["retention"] == evaluation["old_classes"]["map50_95"] / evaluation["base_old_classes"]["map50_95"]
    assert set(evaluation["per_class"]) <= {"square", "circle", "triangle", "cross"}
    assert evaluation["new_classes"] is not None and evaluation["overall"] is not None
    logs = _logs(client, started["id"])
    assert any(m.startswith("replay: 16 of 16 old images") for m in logs)
    assert any(m.startswith("pseudo-labels:") for m in logs)

    model = client.get(f"/api/models/{done['model_id']}").json()
    assert model["parent_id"] == base_id and model["training_mode"] == "incremental"
    assert model["class_names"] == ["square", "circle", "triangle", "cross"]
    assert model["info"]["new_dataset_class_ids"] == [2, 3] and model["info"]["replay_sources"] == [old_data["id"]]

    data = settings.data_dir / "runs" / str(started["id"]) / "data"
    new_labels = {int(line.split()[0]) for p in (data / "labels" / "train").glob(f"d{new_data['id']}_*.txt")
                  for line in p.read_text().splitlines()}
    assert {2, 3} <= new_labels and new_labels & {0, 1}  # remapped human labels plus old-class pseudo-labels
    assert _label_ids(data / "labels" / "val_old") <= {0, 1, 2}
    linked = next((data / "images" / "train").iterdir())
    assert os.stat(linked).st_nlink > 1  # linked to the dataset's file, not a copy of its bytes


def test_classify_adds_classes_with_names_in_merged_order(client, tmp_path, trained_models):
    base_id, old_data = base_with_lineage(client, tmp_path, trained_models, "classify")
    new_data = register_dataset(client, tmp_path, "classify", name="new-cls", train=16, val=8, seed=5,
                                classes=["cross", "diamond"])
    response = client.post(URL, json=incremental_body(base_id, new_data["id"]))
    assert response.status_code == 202, response.text
    merged = client.get(f"/api/models/{base_id}").json()["class_names"] + ["cross", "diamond"]
    assert response.json()["report"]["classes"] == merged
    assert any("pseudo-labels do not apply" in w for w in response.json()["report"]["warnings"])

    done = wait_until_finished(client, response.json()["id"], timeout=240)
    assert done["status"] == "succeeded", _logs(client, done["id"])[-5:]
    evaluation = done["report"]["evaluation"]
    assert evaluation["metric"] == "top1" and evaluation["base_old_classes"] > 0.5
    assert evaluation["retention"] == evaluation["old_classes"] / evaluation["base_old_classes"]
    model = client.get(f"/api/models/{done['model_id']}").json()
    assert model["class_names"] == merged  # the real names, not the ordered folder names


def test_cancel_then_resume_an_incremental_task(client, settings, tmp_path, trained_models):
    base_id, _ = base_with_lineage(client, tmp_path, trained_models, "detect")
    new_data = register_dataset(client, tmp_path, "detect", name="new", train=16, val=8, seed=6,
                                classes=["cross"], hidden=["circle"])
    task = client.post(URL, json=incremental_body(base_id, new_data["id"], epochs=4, batch=4)).json()
    wait_for(client, task["id"], lambda t: t["status"] == "running" and (t["progress"]["epoch"] or 0) >= 1,
             what="the first epoch")
    assert client.post(f"/api/training/tasks/{task['id']}/cancel").status_code == 200
    cancelled = wait_until_finished(client, task["id"], timeout=60)
    assert cancelled["status"] == "cancelled" and cancelled["model_id"] is None
    assert cancelled["report"]["classes"] == ["square", "circle", "triangle", "cross"]
    assert "evaluation" not in cancelled["report"]  # a cancelled task ends at once, unevaluated
    data = settings.data_dir / "runs" / str(task["id"]) / "data"
    built = sorted(p.name for p in (data / "labels" / "train").iterdir())

    assert client.post(f"/api/training/tasks/{task['id']}/resume").status_code == 202
    done = wait_until_finished(client, task["id"], timeout=240)
    assert done["status"] == "succeeded", done["error"]
    assert done["report"]["evaluation"]["retention"] is not None
    assert sorted(p.name for p in (data / "labels" / "train").iterdir()) == built  # the same data, not rebuilt
    metrics = client.get(f"/api/training/tasks/{task['id']}/metrics").json()
    assert [row["epoch"] for row in metrics] == [1, 2, 3, 4]
    assert {"train_kd_cls", "train_kd_box"} <= set(metrics[-1]["values"])  # the old-class distillation terms
    model = client.get(f"/api/models/{done['model_id']}").json()
    assert model["class_names"] == ["square", "circle", "triangle", "cross"] and model["parent_id"] == base_id


def test_segment_adds_a_class_and_pose_gets_more_data(client, tmp_path, trained_models):
    seg_base, _ = base_with_lineage(client, tmp_path, trained_models, "segment")
    seg_new = register_dataset(client, tmp_path, "segment", name="new-seg", train=16, val=8, seed=7,
                               classes=["cross"], hidden=["square"])
    pose_base, _ = base_with_lineage(client, tmp_path, trained_models, "pose")
    pose_new = register_dataset(client, tmp_path, "pose", name="new-pose", train=16, val=8, seed=7)
    tasks = [client.post(URL, json=incremental_body(seg_base, seg_new["id"])).json(),
             client.post(URL, json=incremental_body(pose_base, pose_new["id"])).json()]
    assert tasks[1]["report"]["added_classes"] == [] and tasks[1]["report"]["classes"] == ["triangle"]
    for task, metric in zip(tasks, ("seg", "pose")):
        done = wait_until_finished(client, task["id"], timeout=300)
        assert done["status"] == "succeeded", _logs(client, task["id"])[-5:]
        evaluation = done["report"]["evaluation"]
        assert evaluation["metric"] == metric and evaluation["base_old_classes"]["map50_95"] > 0
        assert evaluation["retention"] is not None
    pose_eval = client.get(f"/api/tasks/{tasks[1]['id']}").json()["report"]["evaluation"]
    assert pose_eval["new_classes_measured"].startswith("every class")  # more data, no class added
