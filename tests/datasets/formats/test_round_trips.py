"""Export → import over HTTP, for every format and the tasks it holds: the same images, splits, classes and
instances come back (the synthetic data has three splits after a test split is asked for)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.datasets.helpers import dataset_zip

CASES = [("yolo", "detect"), ("yolo", "segment"), ("yolo", "pose"), ("yolo", "classify"), ("coco", "detect"),
         ("coco", "segment"), ("coco", "pose"), ("voc", "detect"), ("labelstudio", "detect"),
         ("labelstudio", "segment"), ("labelstudio", "pose"), ("labelstudio", "classify"),
         ("imagefolder", "classify")]


def _upload(client: TestClient, content: bytes, *, name: str, task: str, **fields):
    return client.post("/api/datasets", data={"name": name, "task": task, **fields},
                       files={"file": ("d.zip", content, "application/zip")})


@pytest.mark.parametrize(("fmt", "task"), CASES)
def test_export_then_import_gives_the_same_dataset(client: TestClient, tmp_path: Path, fmt: str, task: str):
    original = _upload(client, dataset_zip(tmp_path, task, train=8, val=4).read_bytes(), name="original", task=task,
                       resplit="true", test_ratio="0.2")
    assert original.status_code == 201, original.text
    original = original.json()

    exported = client.get(f"/api/datasets/{original['id']}/export", params={"format": fmt})
    assert exported.status_code == 200, exported.text
    fields = {"kpt_shape": ",".join(map(str, original["kpt_shape"]))} if fmt == "labelstudio" and task == "pose" else {}
    again = _upload(client, exported.content, name="again", task=task, **fields)

    assert again.status_code == 201, again.text
    again = again.json()
    assert again["format"] == ("imagefolder" if fmt == "yolo" and task == "classify" else fmt), again["format_reason"]
    assert again["class_names"] == original["class_names"]
    assert again["splits"] == original["splits"]
    if task == "pose" and fmt != "labelstudio":
        assert again["kpt_shape"] == original["kpt_shape"]


def test_a_format_that_cannot_hold_the_task_is_422(client: TestClient, tmp_path: Path):
    dataset = _upload(client, dataset_zip(tmp_path, "segment").read_bytes(), name="s", task="segment").json()

    response = client.get(f"/api/datasets/{dataset['id']}/export", params={"format": "voc"})

    assert response.status_code == 422 and "cannot hold a segment dataset" in response.json()["detail"]
