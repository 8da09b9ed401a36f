"""Evaluations in the loop: likely label errors on damaged labels, compare, the guarded promotion, cancel,
deletes, and the request checks."""

from __future__ import annotations

import pytest

from imagerec.datasets.synthetic import write_dataset, zip_folder
from tests.evaluation.conftest import SAME_DATA, evaluate
from tests.helpers import register_dataset, start_training, tiny_training, wait_for, wait_until_finished
from tests.trained_models import register_trained_model, register_weights

DAMAGED = 4  # images of each kind of damage


def _upload(client, folder, name: str) -> int:
    archive = zip_folder(folder, folder.parent / f"{name}.zip")
    with archive.open("rb") as handle:
        response = client.post("/api/datasets", data={"name": name, "task": "detect"},
                               files={"file": (archive.name, handle, "application/zip")})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def _damage(folder) -> dict[str, set[str]]:
    """Drop a label, swap a class, add a box on nothing: each in its own images; names of the images touched."""
    labels = sorted((folder / "labels" / "val").glob("*.txt"))
    touched = {"missing_label": set(), "wrong_label": set(), "spurious_label": set()}
    for index, path in enumerate(labels[: 3 * DAMAGED]):
        lines = path.read_text().splitlines()
        image = f"images/val/{path.stem}.jpg"
        if index < DAMAGED:
            lines, touched["missing_label"] = lines[1:], touched["missing_label"] | {image}
        elif index < 2 * DAMAGED:
            cls, rest = lines[0].split(" ", 1)
            lines[0] = f"{(int(cls) + 1) % 3} {rest}"
            touched["wrong_label"].add(image)
        else:
            lines.append("0 0.06 0.06 0.08 0.08")  # a corner the generator leaves empty
            touched["spurious_label"].add(image)
        path.write_text("\n".join(lines) + "\n")
    return touched


@pytest.mark.training
def test_damaged_labels_show_up_as_likely_label_errors(client, tmp_path, trained_models):
    model_id = register_trained_model(client.app, trained_models("detect"))
    folder = write_dataset("detect", tmp_path / "damaged", **SAME_DATA)
    touched = _damage(folder)
    evaluation = evaluate(client, {"model_id": model_id, "dataset_id": _upload(client, folder, "damaged")})
    issues = client.get(f"/api/evaluations/{evaluation['id']}/label-issues", params={"limit": 500}).json()["items"]
    scores = [issue["score"] for issue in issues]
    assert scores == sorted(scores, reverse=True)
    for reason, images in touched.items():
        found = {issue["image"] for issue in issues if issue["reason"] == reason}
        assert found & images, f"no {reason} among the damaged images {sorted(images)}: {issues}"
    wrong = client.get(f"/api/evaluations/{evaluation['id']}/label-issues", params={"reason": "wrong_label"}).json()
    assert wrong["items"] and all(issue["predicted_class_name"] != issue["class_name"] for issue in wrong["items"])
    worst = client.get(f"/api/evaluations/{evaluation['id']}/images", params={"kind": "fn", "limit": 500}).json()
    assert worst["items"] and all(item["fn"] > 0 for item in worst["items"])


@pytest.mark.training
def test_compare_and_the_promotion_guard_refuse_a_worse_model_and_force_promotes_it(client, tmp_path,
                                                                                    trained_models):
    good = register_trained_model(client.app, trained_models("detect"))
    dataset_id = register_dataset(client, tmp_path, "detect", **SAME_DATA)["id"]
    task = wait_until_finished(client, start_training(client, tiny_training(dataset_id))["id"])
    bad = task["model_id"]
    assert client.get(f"/api/models/{bad}").json()["evaluation_id"]  # its training's own validation
    assert client.post(f"/api/models/{good}/default").status_code == 200

    both = client.post("/api/evaluations", json={"model_ids": [good, bad], "dataset_id": dataset_id}).json()
    assert wait_until_finished(client, both["task_id"])["status"] == "succeeded"
    good_eval, bad_eval = both["group_ids"]
    comparison = client.get("/api/evaluations/compare", params={"ids": f"{good_eval},{bad_eval}"}).json()
    assert comparison["overall"]["box"]["map50_95"]["delta"] < 0
    assert comparison["regressed_classes"] and comparison["worse_images"]
    assert {row["class"] for row in comparison["per_class"]} >= {c["class"] for c in comparison["regressed_classes"]}

    guard = {"dataset_id": dataset_id, "max_class_regression": 0.02}
    refused = client.post(f"/api/models/{bad}/default", json={"guard": guard})
    assert refused.status_code == 409, refused.text
    assert refused.json()["errors"]["comparison"]["regressed_classes"]
    assert client.get(f"/api/models/{good}").json()["is_default"]

    on_train = client.post(f"/api/models/{bad}/default", json={"guard": guard | {"split": "train"}})
    assert on_train.status_code == 202, on_train.text  # nothing measured there yet: evaluations are queued
    assert wait_until_finished(client, on_train.json()["task_id"])["status"] == "succeeded"
    assert client.post(f"/api/models/{bad}/default", json={"guard": guard | {"split": "train"}}).status_code == 409

    forced = client.post(f"/api/models/{bad}/default", json={"guard": guard, "force": True})
    assert forced.status_code == 200, forced.text
    assert forced.json()["is_default"] and forced.json()["promotion"]["forced"] is True

    other = register_dataset(client, tmp_path, "detect", train=8, val=8, seed=5)["id"]
    elsewhere = evaluate(client, {"model_id": good, "dataset_id": other, "analysis": False})
    different = client.get("/api/evaluations/compare", params={"ids": f"{good_eval},{elsewhere['id']}"})
    assert different.status_code == 422 and "different images" in different.text


@pytest.mark.training
def test_an_evaluation_can_be_cancelled_mid_way_and_deletes_behave_as_documented(client, tmp_path,
                                                                                 trained_models):
    model_id = register_trained_model(client.app, trained_models("detect"))
    dataset_id = register_dataset(client, tmp_path, "detect", train=8, val=64, seed=2)["id"]
    started = client.post("/api/evaluations", json={"model_id": model_id, "dataset_id": dataset_id, "imgsz": 960,
                                                    "batch": 1}).json()
    wait_for(client, started["task_id"], lambda t: t["status"] == "running" and t["progress"]["percent"] > 0,
             what="the evaluation to be under way")
    assert client.post(f"/api/tasks/{started['task_id']}/cancel").status_code == 200
    assert wait_until_finished(client, started["task_id"])["status"] == "cancelled"
    assert client.get(f"/api/evaluations/{started['id']}").json()["status"] == "cancelled"

    done = evaluate(client, {"model_id": model_id, "dataset_id": dataset_id})
    assert client.delete(f"/api/models/{model_id}").status_code == 200
    kept = client.get(f"/api/evaluations/{done['id']}").json()
    assert kept["metrics"] == done["metrics"] and kept["model_id"] == model_id
    assert client.get(f"/api/evaluations/{done['id']}/images/0/overlay.png").status_code == 200
    assert client.delete(f"/api/datasets/{dataset_id}").status_code == 200
    gone = client.get(f"/api/evaluations/{done['id']}/images/0/overlay.png")
    assert gone.status_code == 404 and "deleted" in gone.json()["detail"]
    assert client.get(f"/api/evaluations/{done['id']}/images").json()["total"] == 64
    assert client.delete(f"/api/tasks/{done['task_id']}").status_code == 204
    assert client.get(f"/api/evaluations/{done['id']}").status_code == 404


def test_evaluation_requests_are_checked_before_anything_is_queued(client, tmp_path):
    dataset_id = register_dataset(client, tmp_path, "detect", train=4, val=4)["id"]
    weights = tmp_path / "never-loaded.pt"
    weights.write_bytes(b"not a model")
    strangers = register_weights(client.app, task="detect", weights=weights, class_names=["cat", "dog"])
    classifier = register_weights(client.app, task="classify", weights=weights, class_names=["square"])
    fits = register_weights(client.app, task="detect", weights=weights, class_names=["square", "circle"])
    cases = [
        ({"model_id": strangers, "dataset_id": dataset_id}, 422, "no class in common"),
        ({"model_id": classifier, "dataset_id": dataset_id}, 422, "classify model"),
        ({"model_id": fits, "dataset_id": dataset_id, "split": "test"}, 422, "no test split"),
        ({"model_id": fits, "model_ids": [fits], "dataset_id": dataset_id}, 422, "model_id or model_ids"),
        ({"model_ids": [fits, fits], "dataset_id": dataset_id}, 422, "twice"),
        ({"model_id": fits, "dataset_id": dataset_id, "conf": 1.5}, 422, "conf"),
        ({"model_id": fits, "dataset_id": dataset_id, "shell": "rm -rf /"}, 422, "shell"),
        ({"model_id": fits, "dataset_id": 999}, 404, "dataset 999"),
        ({"model_id": 999, "dataset_id": dataset_id}, 404, "model 999"),
    ]
    for body, code, text in cases:
        response = client.post("/api/evaluations", json=body)
        assert response.status_code == code and text in response.text, (body, response.text)
    assert client.get("/api/tasks", params={"type": "evaluation"}).json() == []
    assert client.get("/api/evaluations/compare", params={"ids": "1"}).status_code == 422
    assert client.get("/api/evaluations/compare", params={"ids": "5,7"}).status_code == 404
    assert client.get("/api/evaluations/1").status_code == 404
