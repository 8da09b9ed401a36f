"""Bad incremental requests: each a 4xx naming the problem, before any task exists."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from imagerec.datasets.models import Dataset
from imagerec.db import unit_of_work
from imagerec.model_versions.models import ModelVersion
from tests.datasets.helpers import dataset_zip, upload
from tests.helpers import register_dataset
from tests.training.incremental.helpers import URL, incremental_body


def _model_row(client, *, task: str, class_names: list[str], dataset_id: int | None) -> int:
    """A registry row only: these requests are refused before any weights are read."""
    with unit_of_work(client.app.state.session_factory) as session:
        model = ModelVersion(name=f"base-{task}", task=task, architecture="yolov8n", class_names=class_names,
                             imgsz=64, metrics={}, weights_path="models/none/best.pt", training_mode="regular",
                             dataset_id=dataset_id)
        session.add(model)
        session.flush()
        return model.id


def _two_coordinate_keypoints(folder: Path) -> None:
    """The pose set with kpt_shape [3, 2]: the visibility values dropped."""
    meta = yaml.safe_load((folder / "data.yaml").read_text())
    (folder / "data.yaml").write_text(yaml.safe_dump(meta | {"kpt_shape": [3, 2]}))
    for label in folder.glob("labels/*/*.txt"):
        rows = [line.split() for line in label.read_text().splitlines() if line.strip()]
        label.write_text("".join(" ".join(r[:5] + [v for i, v in enumerate(r[5:]) if i % 3 != 2]) + "\n"
                                 for r in rows))


def _post(client, body: dict):
    response = client.post(URL, json=body)
    assert client.get("/api/tasks").json() == []  # nothing was started
    return response


@pytest.fixture
def detect_setup(client, tmp_path):
    old = register_dataset(client, tmp_path, "detect", name="old", train=4, val=2)
    new = register_dataset(client, tmp_path, "detect", name="new", train=4, val=2, classes=["cross"])
    base = _model_row(client, task="detect", class_names=["square", "circle", "triangle"], dataset_id=old["id"])
    return base, old, new


def test_base_model_and_dataset_of_different_tasks(client, tmp_path, detect_setup):
    base, _, _ = detect_setup
    images = register_dataset(client, tmp_path, "classify", name="cls", train=6, val=3)
    response = _post(client, incremental_body(base, images["id"]))
    assert response.status_code == 422 and "is a detect model but dataset" in response.json()["detail"]


def test_dataset_without_training_images(client, detect_setup):
    base, _, new = detect_setup
    with unit_of_work(client.app.state.session_factory) as session:  # as if its images were gone
        row = session.get(Dataset, new["id"])
        row.summary = {**row.summary, "splits": {**row.summary["splits"], "train": {"images": 0}}}
    response = _post(client, incremental_body(base, new["id"]))
    assert response.status_code == 422 and "no training images" in response.json()["detail"]


def test_replay_source_of_another_task(client, tmp_path, detect_setup):
    base, _, new = detect_setup
    images = register_dataset(client, tmp_path, "classify", name="cls", train=6, val=3)
    body = incremental_body(base, new["id"], replay={"source_dataset_ids": [images["id"]]})
    response = _post(client, body)
    assert response.status_code == 422
    assert f"replay source dataset {images['id']} is a classify dataset" in response.json()["detail"]


def test_replay_source_with_classes_nobody_knows(client, tmp_path, detect_setup):
    base, _, new = detect_setup
    other = register_dataset(client, tmp_path, "detect", name="other", train=4, val=2, classes=["diamond"])
    response = _post(client, incremental_body(base, new["id"], replay={"source_dataset_ids": [other["id"]]}))
    assert response.status_code == 422 and "['diamond']" in response.json()["detail"]


def test_replay_asked_for_with_no_source(client, detect_setup):
    _, _, new = detect_setup
    orphan = _model_row(client, task="detect", class_names=["square"], dataset_id=None)
    response = _post(client, incremental_body(orphan, new["id"]))
    assert response.status_code == 422 and "nothing to replay" in response.json()["detail"]
    base, _, _ = detect_setup
    response = _post(client, incremental_body(base, new["id"], replay={"source_dataset_ids": []}))
    assert response.status_code == 422 and "nothing to replay" in response.json()["detail"]


def test_unknown_base_model_or_replay_source_is_404(client, detect_setup):
    base, _, new = detect_setup
    assert _post(client, incremental_body(999, new["id"])).status_code == 404
    response = _post(client, incremental_body(base, new["id"], replay={"source_dataset_ids": [999]}))
    assert response.status_code == 404 and "replay source dataset 999" in response.json()["detail"]


@pytest.mark.parametrize("change", [
    {"architecture": "yolov8n"},  # the base model is the starting point
    {"pseudo_labels": {"conf": 2}},
    {"replay": {"strategy": "newest"}},
    {"replay": {"ratio": 0}},
    {"distill_old": {"weight": -1}},
    {"distill_old": {"enabled": True, "extra": 1}},
])
def test_out_of_range_or_unknown_fields(client, detect_setup, change):
    base, _, new = detect_setup
    assert _post(client, incremental_body(base, new["id"]) | change).status_code == 422


def _pose_pair(client, tmp_path) -> tuple[dict, dict]:
    three = register_dataset(client, tmp_path, "pose", name="pose-3x3", train=4, val=2)
    archive = dataset_zip(tmp_path, "pose", mutate=_two_coordinate_keypoints, train=4, val=2)
    response = upload(client, archive, name="pose-3x2", task="pose")
    assert response.status_code == 201, response.text
    return three, response.json()


def test_pose_with_another_keypoint_shape(client, tmp_path):
    three, two = _pose_pair(client, tmp_path)
    base = _model_row(client, task="pose", class_names=["triangle"], dataset_id=three["id"])
    response = _post(client, incremental_body(base, two["id"]))
    assert response.status_code == 422 and "keypoints of shape [3, 3]" in response.json()["detail"]

    other_base = _model_row(client, task="pose", class_names=["triangle"], dataset_id=None)
    body = incremental_body(other_base, three["id"], replay={"source_dataset_ids": [two["id"]]})
    response = _post(client, body)
    assert response.status_code == 422 and "keypoint shape [3, 2]" in response.json()["detail"]
