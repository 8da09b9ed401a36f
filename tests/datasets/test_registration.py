"""Registering datasets over HTTP: upload a zip, list, get, delete — what the user sees and what lands on disk."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from imagerec.config import Settings
from imagerec.datasets.synthetic import class_names
from imagerec.tasks.models import Task, TaskRef, TaskStatus
from tests.datasets.helpers import SMALL, dataset_zip, files_under, stored_folders, upload

EXPECTED_ROOTS = {
    "detect": {"images", "labels"},
    "segment": {"images", "labels"},
    "pose": {"images", "labels"},
    "classify": {"train", "val"},
}


@pytest.mark.parametrize("task", ["detect", "segment", "pose", "classify"])
def test_upload_registers_each_task(client: TestClient, settings: Settings, tmp_path: Path, task: str):
    response = upload(client, dataset_zip(tmp_path, task), name=f"shapes-{task}", task=task)

    assert response.status_code == 201, response.text
    dataset = response.json()
    assert dataset["name"] == f"shapes-{task}"
    assert dataset["task"] == task
    assert dataset["source"] == "upload"
    expected_names = sorted(class_names(task)) if task == "classify" else class_names(task)
    assert dataset["class_names"] == expected_names
    assert dataset["splits"]["train"]["images"] == SMALL["train"]
    assert dataset["splits"]["val"]["images"] == SMALL["val"]
    assert dataset["splits"]["train"]["instances"] >= SMALL["train"]
    [folder] = stored_folders(settings)
    assert {path.name for path in (folder / "files").iterdir()} == EXPECTED_ROOTS[task]
    assert len([f for f in files_under(folder / "files") if not f.endswith(".txt")]) == SMALL["train"] + SMALL["val"]


def test_pose_keeps_keypoint_shape_and_flip(client: TestClient, tmp_path: Path):
    dataset = upload(client, dataset_zip(tmp_path, "pose"), task="pose").json()

    assert dataset["kpt_shape"] == [3, 3]
    assert dataset["flip_idx"] == [0, 2, 1]


def test_user_yaml_is_never_stored(client: TestClient, settings: Settings, tmp_path: Path):
    """The server writes its own YAML for training; the user's is read as data and left out of the dataset."""
    upload(client, dataset_zip(tmp_path, "detect"))

    [folder] = stored_folders(settings)
    assert not list(folder.rglob("*.yaml"))


def test_zip_wrapped_in_one_folder_is_accepted(client: TestClient, tmp_path: Path):
    flat = zipfile.ZipFile(dataset_zip(tmp_path, "detect"))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as wrapped:
        for info in flat.infolist():
            wrapped.writestr(f"my-shapes/{info.filename}", flat.read(info))
        wrapped.writestr("__MACOSX/my-shapes/._data.yaml", b"junk")

    response = upload(client, buffer.getvalue())

    assert response.status_code == 201, response.text
    assert response.json()["splits"]["val"]["images"] == SMALL["val"]


def test_backgrounds_are_counted(client: TestClient, tmp_path: Path):
    response = upload(client, dataset_zip(tmp_path, "detect", backgrounds=2))

    splits = response.json()["splits"]
    assert splits["train"]["images"] == SMALL["train"] + 2
    assert splits["train"]["backgrounds"] == 2


def test_list_is_newest_first_and_pages(client: TestClient, tmp_path: Path):
    archive = dataset_zip(tmp_path, "detect")
    ids = [upload(client, archive, name=f"set-{index}").json()["id"] for index in range(3)]

    assert [d["id"] for d in client.get("/api/datasets").json()] == ids[::-1]
    assert [d["id"] for d in client.get("/api/datasets", params={"limit": 1, "offset": 1}).json()] == [ids[1]]
    assert client.get(f"/api/datasets/{ids[0]}").json()["name"] == "set-0"


def test_get_missing_dataset_is_404(client: TestClient):
    response = client.get("/api/datasets/999")

    assert response.status_code == 404
    assert "999" in response.json()["detail"]


def test_delete_removes_files_and_hides_the_dataset(client: TestClient, settings: Settings, tmp_path: Path):
    dataset = upload(client, dataset_zip(tmp_path, "segment"), task="segment").json()

    response = client.delete(f"/api/datasets/{dataset['id']}")

    assert response.status_code == 200, response.text
    assert response.json() == {"id": dataset["id"], "kind": "dataset", "deleted": True, "notes": []}
    gone = client.get(f"/api/datasets/{dataset['id']}")
    assert gone.status_code == 404 and f"dataset {dataset['id']} not found: it was deleted" in gone.json()["detail"]
    assert client.get("/api/datasets").json() == []
    assert stored_folders(settings) == []
    assert client.delete(f"/api/datasets/{dataset['id']}").status_code == 404


def test_a_deleted_datasets_name_can_be_registered_again(client: TestClient, settings: Settings, tmp_path: Path):
    archive = dataset_zip(tmp_path, "detect")
    first = upload(client, archive, name="reused").json()
    assert client.delete(f"/api/datasets/{first['id']}").status_code == 200

    again = upload(client, archive, name="reused")

    assert again.status_code == 201, again.text
    assert again.json()["id"] > first["id"]
    assert [d["id"] for d in client.get("/api/datasets").json()] == [again.json()["id"]]
    assert upload(client, archive, name="reused").status_code == 409  # unique among live datasets still
    assert len(stored_folders(settings)) == 1


def test_delete_refused_while_a_task_uses_it(client: TestClient, settings: Settings, tmp_path: Path):
    dataset = upload(client, dataset_zip(tmp_path, "detect")).json()
    with client.app.state.session_factory.begin() as session:
        task = Task(kind="training", type="regular", params={}, status=TaskStatus.running, worker="elsewhere:1")
        session.add(task)
        session.flush()
        session.add(TaskRef(task_id=task.id, ref_kind="dataset", ref_id=dataset["id"], role="dataset"))

    response = client.delete(f"/api/datasets/{dataset['id']}")

    assert response.status_code == 409
    assert "task" in response.json()["detail"]
    assert len(stored_folders(settings)) == 1


def test_duplicate_name_is_409_and_writes_nothing(client: TestClient, settings: Settings, tmp_path: Path):
    archive = dataset_zip(tmp_path, "detect")
    assert upload(client, archive, name="twice").status_code == 201

    response = upload(client, archive, name="twice")

    assert response.status_code == 409
    assert "twice" in response.json()["detail"]
    assert len(stored_folders(settings)) == 1
    assert list((settings.data_dir / "tmp").iterdir()) == []
