"""Dataset versions over HTTP: v1 → v2 (added images) → v3 (relabelled and removed), their diffs, their storage
(unchanged files are links, a parent's files never change) and a model trained on v2 naming v2."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from imagerec.config import Settings
from imagerec.datasets.synthetic import write_dataset, zip_folder
from tests.datasets.helpers import dataset_zip, upload
from tests.helpers import start_training, tiny_training, wait_until_finished

pytestmark = pytest.mark.both_databases


def _version(client: TestClient, dataset_id: int, *, folder: Path | None = None, tmp_path: Path | None = None,
             **fields):
    files = None
    if folder is not None:
        files = {"file": ("v.zip", zip_folder(folder, tmp_path / f"{folder.name}.zip").read_bytes(), "application/zip")}
    return client.post(f"/api/datasets/{dataset_id}/versions", data=fields, files=files)


def _added_images(tmp_path: Path, count: int) -> Path:
    """New labelled images (other names, other content) in the YOLO layout, train split only."""
    folder = write_dataset("detect", tmp_path / "more-src", train=count, val=0, imgsz=32, seed=7)
    out = tmp_path / "more"
    for kind in ("images", "labels"):
        for path in (folder / kind / "train").iterdir():
            target = out / kind / "train" / f"new_{path.name}"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, target)
    shutil.copy(folder / "data.yaml", out / "data.yaml")
    return out


def _relabel(tmp_path: Path, settings: Settings, dataset: dict, image: str) -> Path:
    """One image the dataset holds, with one more box in its label."""
    files = settings.data_dir / "datasets"
    [source] = [p for p in files.rglob(f"images/train/{image}") if p.is_file()][:1]
    out = tmp_path / "relabel"
    (out / "images" / "train").mkdir(parents=True)
    (out / "labels" / "train").mkdir(parents=True)
    shutil.copy(source, out / "images" / "train" / image)
    label = source.parent.parent.parent / "labels" / "train" / f"{Path(image).stem}.txt"
    (out / "labels" / "train" / f"{Path(image).stem}.txt").write_text(label.read_text() + "0 0.5 0.5 0.3 0.3\n")
    (out / "data.yaml").write_text("names: [square, circle, triangle]\n")
    return out


@pytest.fixture
def v1(client: TestClient, tmp_path: Path) -> dict:
    response = upload(client, dataset_zip(tmp_path, "detect", train=6, val=3))
    assert response.status_code == 201, response.text
    return response.json()


def test_version_chain_and_diffs(client: TestClient, settings: Settings, tmp_path: Path, v1: dict):
    v2 = _version(client, v1["id"], folder=_added_images(tmp_path, 4), tmp_path=tmp_path)
    assert v2.status_code == 201, v2.text
    v2 = v2.json()
    v3 = _version(client, v2["id"], folder=_relabel(tmp_path, settings, v1, "train_0001.jpg"), tmp_path=tmp_path,
                  remove=["train/train_0002.jpg"])
    assert v3.status_code == 201, v3.text
    v3 = v3.json()

    assert (v2["name"], v2["version"], v2["parent_id"]) == (v1["name"], 2, v1["id"])
    assert (v3["version"], v3["parent_id"]) == (3, v2["id"])
    assert len({v1["content_hash"], v2["content_hash"], v3["content_hash"]}) == 3
    added = v2["splits"]["train"]["images"] + v2["splits"]["val"]["images"] - 9
    assert added == 4  # new images went to train or were split into val, none lost
    first = client.get(f"/api/datasets/{v2['id']}/diff", params={"from": v1["id"]}).json()
    assert first["counts"] == {"added": 4, "removed": 0, "relabelled": 0, "replaced": 0}
    assert sum(change["gained"] for change in first["instances"].values()) > 0
    second = client.get(f"/api/datasets/{v3['id']}/diff", params={"from": v2["id"]}).json()
    assert second["counts"] == {"added": 0, "removed": 1, "relabelled": 1, "replaced": 0}
    assert second["relabelled"] == ["train/train_0001.jpg"] and second["removed"] == ["train/train_0002.jpg"]
    assert second["instances"]["square"]["gained"] == 1
    back = client.get(f"/api/datasets/{v1['id']}/diff", params={"from": v3["id"]}).json()
    assert back["counts"]["removed"] == 4 and back["counts"]["added"] == 1


def test_a_version_links_unchanged_files_and_never_changes_its_parent(client: TestClient, settings: Settings,
                                                                       tmp_path: Path, v1: dict):
    before = {p: p.read_bytes() for p in (settings.data_dir / "datasets").rglob("*") if p.is_file()}

    v2 = _version(client, v1["id"], folder=_relabel(tmp_path, settings, v1, "train_0001.jpg"), tmp_path=tmp_path)

    assert v2.status_code == 201, v2.text
    assert {p: p.read_bytes() for p in before} == before  # v1's files, relabelled label included, are unchanged
    [old, new] = sorted((settings.data_dir / "datasets").iterdir(), key=lambda p: p.stat().st_mtime)
    unchanged = "files/images/train/train_0003.jpg"
    assert (old / unchanged).stat().st_ino == (new / unchanged).stat().st_ino
    relabelled = "files/labels/train/train_0001.txt"
    assert (old / relabelled).stat().st_ino != (new / relabelled).stat().st_ino


def test_bad_version_requests(client: TestClient, settings: Settings, tmp_path: Path, v1: dict):
    nothing = _version(client, v1["id"])
    unknown = _version(client, v1["id"], remove=["train/nope.jpg"])
    same = _version(client, v1["id"], folder=_relabel(tmp_path, settings, v1, "train_0001.jpg"), tmp_path=tmp_path,
                    remove=["train/train_0001.jpg", "train/train_0001.jpg"])

    assert nothing.status_code == 422 and "needs added" in nothing.json()["detail"]
    assert unknown.status_code == 422 and "train/nope.jpg" in unknown.json()["detail"]
    assert same.status_code == 201  # removed then added back with other labels: a relabel
    assert len(client.get("/api/datasets").json()) == 2
    assert list((settings.data_dir / "tmp").iterdir()) == []


@pytest.mark.training
def test_a_model_trained_on_v2_says_v2(client: TestClient, tmp_path: Path, v1: dict):
    v2 = _version(client, v1["id"], folder=_added_images(tmp_path, 2), tmp_path=tmp_path).json()

    task = wait_until_finished(client, start_training(client, tiny_training(v2["id"]))["id"])

    assert task["status"] == "succeeded", task
    model = client.get(f"/api/models/{task['model_id']}").json()
    assert model["dataset"]["id"] == v2["id"] and model["dataset"]["version"] == 2


def test_a_classify_image_moved_to_another_class_is_relabelled(client: TestClient, settings: Settings,
                                                                tmp_path: Path):
    v1 = upload(client, dataset_zip(tmp_path, "classify", train=6, val=3), task="classify").json()
    [image] = sorted((settings.data_dir / "datasets").rglob("files/train/*/*"))[:1]
    other = next(name for name in v1["class_names"] if name != image.parent.name)
    out = tmp_path / "moved" / "train" / other
    out.mkdir(parents=True)
    shutil.copy(image, out / image.name)
    (tmp_path / "moved" / "train" / image.parent.name).mkdir()  # the class list stays the same

    v2 = _version(client, v1["id"], folder=tmp_path / "moved", tmp_path=tmp_path)

    assert v2.status_code == 201, v2.text
    assert v2.json()["splits"]["train"]["images"] == v1["splits"]["train"]["images"]
    changes = client.get(f"/api/datasets/{v2.json()['id']}/diff", params={"from": v1["id"]}).json()
    assert changes["counts"] == {"added": 0, "removed": 0, "relabelled": 1, "replaced": 0}
    assert changes["instances"] == {image.parent.name: {"gained": 0, "lost": 1}, other: {"gained": 1, "lost": 0}}


def _folders_by_age(settings: Settings) -> list[Path]:
    return sorted((settings.data_dir / "datasets").iterdir(), key=lambda p: p.stat().st_mtime)


def _counts(stats: dict) -> dict:
    """Everything of a stats answer but the warnings' examples, which a version may pick differently."""
    return {"splits": stats["splits"], "boxes": stats.get("boxes"),
            "findings": {kind: tally["count"] for kind, tally in stats["findings"].items()}}


def _spy(monkeypatch: pytest.MonkeyPatch, module, name: str) -> list:
    """Record the first argument of every call of ``module.name`` (which still runs)."""
    calls, real = [], getattr(module, name)

    def recording(first, *args, **kwargs):
        calls.append(first)
        return real(first, *args, **kwargs)

    monkeypatch.setattr(module, name, recording)
    return calls


def test_a_version_reads_only_what_changed_and_counts_like_a_full_pass(
        client: TestClient, settings: Settings, tmp_path: Path, v1: dict, monkeypatch: pytest.MonkeyPatch):
    from imagerec.datasets import stats, validation

    checked_labels = _spy(monkeypatch, validation, "_check_label_file")
    checked_images = _spy(monkeypatch, validation, "check_image")
    read_labels = _spy(monkeypatch, stats, "_read_objects")
    v2 = _version(client, v1["id"], folder=_relabel(tmp_path, settings, v1, "train_0001.jpg"), tmp_path=tmp_path,
                  remove=["train/train_0002.jpg"])

    assert v2.status_code == 201, v2.text
    assert sorted(label.name for label in checked_labels) == ["train_0001.txt"]  # the relabelled one only
    assert [image.name for image in checked_images] == ["train_0001.jpg"]  # the upload's copy of it
    # the parent's counts of the relabelled and the removed image are taken back, the new label counted
    assert sorted(label.name for label in read_labels) == ["train_0001.txt", "train_0001.txt", "train_0002.txt"]
    stored = client.get(f"/api/datasets/{v2.json()['id']}/stats").json()
    full = stats.compute_stats(_folders_by_age(settings)[-1] / "files", task="detect",
                               metadata=validation.Metadata(v1["class_names"])).as_dict()
    assert _counts(stored) == _counts(full)
    assert stored["splits"]["train"]["images"] == v1["splits"]["train"]["images"] - 1


def test_a_version_stores_its_manifest_as_a_delta_that_outlives_its_parent(
        client: TestClient, settings: Settings, tmp_path: Path, v1: dict):
    import json

    from imagerec.datasets import versions

    v2 = _version(client, v1["id"], folder=_added_images(tmp_path, 3), tmp_path=tmp_path).json()
    v3 = _version(client, v2["id"], remove=["train/train_0003.jpg"]).json()
    first, second, third = _folders_by_age(settings)
    stored = json.loads((third / versions.MANIFEST_FILE).read_text())
    assert stored["base"] == second.name and stored["removed"] == ["train/train_0003.jpg"] and stored["set"] == {}
    whole = versions.read_manifest(third)
    before = client.get(f"/api/datasets/{v3['id']}/diff", params={"from": v1["id"]}).json()

    assert client.delete(f"/api/datasets/{v2['id']}").status_code == 200

    assert not second.exists()
    assert "base" not in json.loads((third / versions.MANIFEST_FILE).read_text())  # written whole first
    assert versions.read_manifest(third) == whole
    after = client.get(f"/api/datasets/{v3['id']}/diff", params={"from": v1["id"]}).json()
    assert after["counts"] == before["counts"] == {"added": 3, "removed": 1, "relabelled": 0, "replaced": 0}
    assert client.get(f"/api/datasets/{v3['id']}").json()["content_hash"] == v3["content_hash"]
    assert first.exists()


def test_a_classify_version_counts_like_a_full_pass(client: TestClient, settings: Settings, tmp_path: Path):
    from imagerec.datasets import stats, validation

    v1 = upload(client, dataset_zip(tmp_path, "classify", train=6, val=3), task="classify").json()
    [image] = sorted((settings.data_dir / "datasets").rglob("files/train/*/*"))[:1]
    other = next(name for name in v1["class_names"] if name != image.parent.name)
    (tmp_path / "moved" / "train" / other).mkdir(parents=True)
    shutil.copy(image, tmp_path / "moved" / "train" / other / image.name)

    v2 = _version(client, v1["id"], folder=tmp_path / "moved", tmp_path=tmp_path, remove=["val/" + sorted(
        p.name for p in image.parents[2].glob("val/*/*"))[0]])

    assert v2.status_code == 201, v2.text
    stored = client.get(f"/api/datasets/{v2.json()['id']}/stats").json()
    full = stats.compute_stats(_folders_by_age(settings)[-1] / "files", task="classify",
                               metadata=validation.Metadata(v1["class_names"])).as_dict()
    assert stored["splits"] == full["splits"] and stored["warnings"] == full["warnings"]
    assert stored["splits"]["val"]["images"] == v1["splits"]["val"]["images"] - 1
