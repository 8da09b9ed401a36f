"""Evaluations over HTTP on tiny trained models: each task end to end, plots, per-image rows, label issues."""

from __future__ import annotations

import pytest

from tests.evaluation.conftest import assert_real_png, evaluate

pytestmark = pytest.mark.training


def _images(client, evaluation_id: int, **query) -> dict:
    response = client.get(f"/api/evaluations/{evaluation_id}/images", params={"limit": 500, **query})
    assert response.status_code == 200, response.text
    return response.json()


def test_a_detection_evaluation_gives_metrics_plots_images_and_overlays(client, registered):
    model_id, dataset_id = registered("detect")
    evaluation = evaluate(client, {"model_id": model_id, "dataset_id": dataset_id})
    assert evaluation["status"] == "succeeded" and evaluation["images"] == 16
    tasks = client.get("/api/tasks", params={"type": "evaluation"}).json()
    assert [task["kind"] for task in tasks] == ["evaluation"]
    metrics = evaluation["metrics"]
    box = metrics["overall"]["box"]
    assert 0.3 < box["map50_95"] <= box["map50"] <= 1 and 0 < box["precision"] <= 1 and 0 < box["recall"] <= 1
    per_class = metrics["per_class"]
    assert {row["class"] for row in per_class} <= set(evaluation["classes"]["common"])
    assert all(row["instances"] >= row["images"] >= 1 for row in per_class)
    names = metrics["confusion"]["names"]
    assert names[-1] == "background" and len(metrics["confusion"]["counts"]) == len(names)
    assert set(metrics["curves"]["box"]) == {"pr", "f1_conf", "p_conf", "r_conf"}
    assert len(metrics["curves"]["box"]["pr"]["x"]) == 101 and "all" in metrics["curves"]["box"]["pr"]["series"]
    assert metrics["speed"]["inference"] > 0

    plots = {plot["name"] for plot in client.get(f"/api/evaluations/{evaluation['id']}/plots").json()}
    assert {"confusion_matrix", "confusion_matrix_normalized", "BoxPR_curve", "BoxF1_curve", "BoxP_curve",
            "BoxR_curve"} <= plots
    for name in ("confusion_matrix", "BoxPR_curve"):
        response = client.get(f"/api/evaluations/{evaluation['id']}/plots/{name}.png")
        assert response.status_code == 200 and response.headers["content-type"] == "image/png"
        assert_real_png(response.content)
    assert client.get(f"/api/evaluations/{evaluation['id']}/plots/..%2Fdata.png").status_code in (404, 422)

    page = _images(client, evaluation["id"])
    assert page["total"] == 16 and len(page["items"]) == 16
    errors = [item["errors"] for item in page["items"]]
    assert errors == sorted(errors, reverse=True)
    labelled = sum(row["instances"] for row in per_class)
    found = sum(item["tp"] + item["fn"] + item["wrong_class"] + item["localisation"] for item in page["items"])
    assert found == labelled  # every label is a tp, fn, wrong class or poorly localised match
    worst = page["items"][0]
    overlay = client.get(f"/api/evaluations/{evaluation['id']}/images/{worst['image_id']}/overlay.png")
    assert overlay.status_code == 200
    assert assert_real_png(overlay.content).width >= 320  # small images are enlarged to be read
    assert client.get(f"/api/evaluations/{evaluation['id']}/images/999/overlay.png").status_code == 404
    paged = _images(client, evaluation["id"], limit=5, offset=5)
    assert [item["image_id"] for item in paged["items"]] == [item["image_id"] for item in page["items"][5:10]]
    issues = client.get(f"/api/evaluations/{evaluation['id']}/label-issues").json()
    assert issues["total"] == evaluation["label_issues_count"]


@pytest.mark.parametrize("task, kind", [("segment", "mask"), ("pose", "pose")])
def test_segmentation_and_pose_evaluations_measure_masks_and_keypoints_too(client, registered, task, kind):
    model_id, dataset_id = registered(task)
    evaluation = evaluate(client, {"model_id": model_id, "dataset_id": dataset_id})
    overall = evaluation["metrics"]["overall"]
    assert set(overall) == {"box", kind}
    assert 0 < overall[kind]["map50_95"] <= 1 and 0 < overall["box"]["map50"] <= 1
    assert all(kind in row for row in evaluation["metrics"]["per_class"])
    assert kind in evaluation["metrics"]["curves"]
    page = _images(client, evaluation["id"])
    assert page["total"] == evaluation["images"] == 16


def test_a_classification_evaluation_gives_top1_top5_and_per_class_scores(client, registered):
    model_id, dataset_id = registered("classify")
    evaluation = evaluate(client, {"model_id": model_id, "dataset_id": dataset_id})
    overall = evaluation["metrics"]["overall"]
    assert 0.5 < overall["top1"] <= overall["top5"] <= 1
    rows = evaluation["metrics"]["per_class"]
    assert sum(row["support"] for row in rows) == evaluation["images"]
    assert all(0 <= row["f1"] <= 1 for row in rows)
    page = _images(client, evaluation["id"])
    assert sum(item["tp"] + item["wrong_class"] for item in page["items"]) == evaluation["images"]
    plots = {plot["name"] for plot in client.get(f"/api/evaluations/{evaluation['id']}/plots").json()}
    assert {"confusion_matrix", "confusion_matrix_normalized"} <= plots
