"""Batch pre-labelling over HTTP: a real trained model labels a dataset (or a folder) into a new dataset."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from imagerec.datasets.models import Dataset
from imagerec.datasets.synthetic import write_dataset, zip_folder
from imagerec.db import unit_of_work
from tests.helpers import start_training, tiny_training, wait_for, wait_until_finished
from tests.trained_models import register_trained_model

pytestmark = pytest.mark.training


def _tree_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(folder)).encode() + path.read_bytes())
    return digest.hexdigest()


def _upload(client, folder: Path, tmp_path: Path, *, name: str, task: str) -> dict:
    archive = zip_folder(folder, tmp_path / f"{name}.zip")
    with archive.open("rb") as handle:
        response = client.post("/api/datasets", data={"name": name, "task": task},
                               files={"file": (archive.name, handle, "application/zip")})
    assert response.status_code == 201, response.text
    return response.json()


def _dataset_with_unlabelled_half(client, trained, tmp_path: Path) -> tuple[dict, set[str]]:
    folder = tmp_path / "half"
    shutil.copytree(trained.dataset_dir, folder, ignore=shutil.ignore_patterns("*.cache", "train.yaml"))
    labels = sorted((folder / "labels" / "train").glob("*.txt"))
    removed = {label.stem for label in labels[::2]}
    for label in labels[::2]:
        label.unlink()
    return _upload(client, folder, tmp_path, name="half-labelled", task=trained.task), removed


def _files(client, settings, dataset: dict) -> Path:
    with unit_of_work(client.app.state.session_factory) as session:
        return settings.data_dir / session.get(Dataset, dataset["id"]).storage_path / "files"


def test_fill_missing_labels_only_the_unlabelled_images_and_leaves_the_source_alone(
        client, settings, tmp_path, trained_models):
    trained = trained_models("detect")
    model_id = register_trained_model(client.app, trained)
    client.post(f"/api/models/{model_id}/default")
    source, removed = _dataset_with_unlabelled_half(client, trained, tmp_path)
    source_files = _files(client, settings, source)
    before = _tree_digest(source_files)

    response = client.post("/api/annotation/jobs", json={"dataset_id": source["id"], "conf": 0.3, "name": "auto"})
    assert response.status_code == 202, response.text
    job = wait_until_finished(client, response.json()["id"])
    assert job["status"] == "succeeded", job["error"]
    assert job["progress"]["eta_seconds"] is None and job["progress"]["percent"] == 100  # nothing left to wait for
    assert job["kind"] == "annotation" and any(t["id"] == job["id"] for t in client.get("/api/tasks").json())
    report = job["report"]
    assert report["images_predicted"] == len(removed) and report["images_done"] == report["images_total"]

    assert _tree_digest(source_files) == before  # the human labels of the source are untouched
    result = client.get(f"/api/datasets/{report['dataset_id']}").json()
    assert result["name"] == "auto" and result["class_names"] == trained.class_names
    assert result["splits"]["train"]["images"] == source["splits"]["train"]["images"]
    files = _files(client, settings, result)
    for label in (source_files / "labels" / "train").glob("*.txt"):  # human labels kept as they were
        assert (files / "labels" / "train" / label.name).read_text() == label.read_text()
    predicted = [files / "labels" / "train" / f"{stem}.txt" for stem in removed]
    with_objects = [p for p in predicted if p.is_file() and p.read_text().strip()]
    assert len(with_objects) >= 0.7 * len(removed)  # the model found the shapes in most of them
    coco = (files.parent / "annotations.coco.json").read_text()
    assert '"annotations"' in coco

    trained_on_it = wait_until_finished(client, start_training(client, tiny_training(result["id"]))["id"])
    assert trained_on_it["status"] == "succeeded", trained_on_it["error"]


def test_folder_of_images_becomes_a_trainable_dataset(client, settings, allowed_root, trained_models):
    trained = trained_models("detect")
    model_id = register_trained_model(client.app, trained)
    pictures = allowed_root / "pictures" / "nested"
    pictures.mkdir(parents=True)
    for image in sorted((trained.dataset_dir / "images" / "train").iterdir())[:20]:
        shutil.copy(image, pictures / image.name)

    response = client.post("/api/annotation/jobs", json={"path": str(allowed_root / "pictures"), "model_id": model_id})
    job = wait_until_finished(client, response.json()["id"])
    assert job["status"] == "succeeded", job["error"]
    result = client.get(f"/api/datasets/{job['report']['dataset_id']}").json()
    assert result["splits"]["train"]["images"] + result["splits"]["val"]["images"] == 20
    assert result["splits"]["val"]["images"] >= 1 and result["splits"]["train"]["instances"] > 0


def test_cancelled_job_keeps_what_it_finished(client, settings, tmp_path, allowed_root, trained_models):
    model_id = register_trained_model(client.app, trained_models("detect"))
    write_dataset("detect", allowed_root / "many", train=600, val=8, imgsz=64, seed=3)
    response = client.post("/api/annotation/jobs", json={  # imgsz 640: slow enough per image to cancel midway
        "path": str(allowed_root / "many" / "images"), "model_id": model_id, "name": "partial", "imgsz": 640})
    job_id = response.json()["id"]
    wait_for(client, job_id, lambda t: t["progress"]["percent"] > 2, what="some images done")
    client.post(f"/api/annotation/jobs/{job_id}/cancel")
    job = wait_until_finished(client, job_id)
    assert job["status"] == "cancelled"
    report = job["report"]
    assert 0 < report["images_done"] < report["images_total"] == 608
    result = client.get(f"/api/datasets/{report['dataset_id']}").json()
    splits = result["splits"]
    assert splits["train"]["images"] + splits["val"]["images"] == report["images_done"]


def test_bad_job_requests_are_4xx(client, tmp_path, trained_models):
    detect_model = register_trained_model(client.app, trained_models("detect"))
    source, _ = _dataset_with_unlabelled_half(client, trained_models("detect"), tmp_path)
    cases = [
        ({"dataset_id": source["id"], "path": "/tmp", "model_id": detect_model}, 422, "exactly one source"),
        ({"path": "pictures"}, 422, "model_id is required"),
        ({"dataset_id": source["id"]}, 404, "no default detect model"),
        ({"dataset_id": 999, "model_id": detect_model}, 404, "dataset 999"),
        ({"dataset_id": source["id"], "model_id": detect_model, "shapes": ["keypoints"]}, 422, "keypoints"),
        ({"dataset_id": source["id"], "model_id": detect_model, "conf": 2}, 422, "conf"),
        ({"dataset_id": source["id"], "model_id": detect_model, "mode": "merge"}, 422, "mode"),
        ({"path": "/etc", "model_id": detect_model}, 403, "outside"),
    ]
    for body, status, text in cases:
        response = client.post("/api/annotation/jobs", json=body)
        assert response.status_code == status and text in response.text, (body, response.text)
    assert client.get("/api/annotation/jobs").json() == []
