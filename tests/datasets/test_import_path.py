"""Registering a server folder in place: confined to the allowed roots, images linked, labels snapshotted."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from imagerec.config import Settings
from imagerec.datasets.synthetic import write_dataset
from tests.datasets.helpers import SMALL, assert_nothing_registered, stored_folders
from tests.helpers import api_client

URL = "/api/datasets/import-path"


def import_folder(client: TestClient, path: Path | str, *, task: str = "detect", name: str = "on-server"):
    return client.post(URL, json={"name": name, "task": task, "path": str(path)})


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A sibling of the allowed root that shares its prefix."""
    folder = tmp_path / "allowed-evil"
    write_dataset("detect", folder, **SMALL)
    return folder


def test_import_links_images_and_copies_labels(client: TestClient, settings: Settings, allowed_root: Path):
    source = write_dataset("pose", allowed_root / "shapes", **SMALL)

    response = import_folder(client, source, task="pose")

    assert response.status_code == 201, response.text
    dataset = response.json()
    assert (dataset["source"], dataset["source_path"]) == ("path", str(source))
    assert dataset["kpt_shape"] == [3, 3]
    [folder] = stored_folders(settings)
    image = folder / "files" / "images" / "train" / "train_0000.jpg"
    label = folder / "files" / "labels" / "train" / "train_0000.txt"
    assert image.is_symlink() and Path(os.readlink(image)) == source / "images" / "train" / "train_0000.jpg"
    assert not label.is_symlink() and label.read_text() == (source / "labels/train/train_0000.txt").read_text()


def test_relative_path_is_taken_from_the_first_root(client: TestClient, allowed_root: Path):
    write_dataset("classify", allowed_root / "cls", **SMALL)

    response = import_folder(client, "cls", task="classify")

    assert response.status_code == 201, response.text
    assert response.json()["class_names"] == ["circle", "square", "triangle"]


def test_delete_keeps_the_source_folder(client: TestClient, settings: Settings, allowed_root: Path):
    source = write_dataset("detect", allowed_root / "shapes", **SMALL)
    before = sorted(path.relative_to(source) for path in source.rglob("*"))
    dataset = import_folder(client, source).json()

    assert client.delete(f"/api/datasets/{dataset['id']}").status_code == 200

    assert stored_folders(settings) == []
    assert sorted(path.relative_to(source) for path in source.rglob("*")) == before


def test_outside_the_roots_is_403(client: TestClient, settings: Settings, outside: Path):
    response = import_folder(client, outside)

    assert response.status_code == 403
    assert_nothing_registered(client, settings)


def test_dotdot_escape_is_403(client: TestClient, settings: Settings, allowed_root: Path, outside: Path):
    response = import_folder(client, f"{allowed_root}/../{outside.name}")

    assert response.status_code == 403
    assert_nothing_registered(client, settings)


def test_symlink_to_outside_is_403(client: TestClient, settings: Settings, allowed_root: Path, outside: Path):
    (allowed_root / "shortcut").symlink_to(outside, target_is_directory=True)

    response = import_folder(client, allowed_root / "shortcut")

    assert response.status_code == 403
    assert_nothing_registered(client, settings)


def test_missing_folder_is_404(client: TestClient, settings: Settings, allowed_root: Path):
    response = import_folder(client, allowed_root / "nope")

    assert response.status_code == 404
    assert_nothing_registered(client, settings)


def test_a_file_is_not_a_dataset_folder(client: TestClient, settings: Settings, allowed_root: Path):
    (allowed_root / "data.yaml").write_text("names: [a]")

    response = import_folder(client, allowed_root / "data.yaml")

    assert response.status_code == 422
    assert "not a folder" in response.json()["detail"]


def test_symlink_inside_the_dataset_escaping_the_roots_is_named(
    client: TestClient, settings: Settings, allowed_root: Path, outside: Path
):
    source = write_dataset("detect", allowed_root / "shapes", **SMALL)
    leaked = source / "images" / "train" / "leak.jpg"
    leaked.symlink_to(outside / "images" / "train" / "train_0000.jpg")

    response = import_folder(client, source)

    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"file": "images/train/leak.jpg", "line": None, "message": "symlink points outside the allowed roots"}
    ]
    assert_nothing_registered(client, settings)


def test_symlinks_inside_the_roots_are_followed(client: TestClient, allowed_root: Path):
    source = write_dataset("detect", allowed_root / "shapes", **SMALL)
    shared = write_dataset("detect", allowed_root / "shared", seed=3, **SMALL)
    (source / "images" / "train" / "extra.jpg").symlink_to(shared / "images" / "train" / "train_0000.jpg")

    response = import_folder(client, source)

    assert response.status_code == 201, response.text
    assert response.json()["splits"]["train"]["images"] == SMALL["train"] + 1


def test_invalid_labels_are_reported_like_uploads(client: TestClient, settings: Settings, allowed_root: Path):
    source = write_dataset("detect", allowed_root / "shapes", **SMALL)
    (source / "labels" / "val" / "val_0001.txt").write_text("0 0.5 0.5 0 0.2\n")

    response = import_folder(client, source)

    assert response.status_code == 422
    [problem] = response.json()["errors"]
    assert (problem["file"], problem["line"]) == ("labels/val/val_0001.txt", 1)
    assert "width and height" in problem["message"]
    assert_nothing_registered(client, settings)


def test_unknown_fields_are_refused(client: TestClient, allowed_root: Path):
    response = client.post(URL, json={"name": "x", "task": "detect", "path": str(allowed_root), "copy": True})

    assert response.status_code == 422


@pytest.fixture
def rootless_client(tmp_path: Path) -> Iterator[TestClient]:
    with api_client(Settings(data_dir=tmp_path / "rootless")) as test_client:
        yield test_client


def test_no_roots_configured_is_403(rootless_client: TestClient, allowed_root: Path):
    response = import_folder(rootless_client, allowed_root)

    assert response.status_code == 403
    assert "IMAGEREC_ALLOWED_ROOTS" in response.json()["detail"]
