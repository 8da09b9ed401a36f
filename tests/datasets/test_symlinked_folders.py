"""Import-path follows a symlinked folder only while every component of every path stays inside the roots.

A folder symlink anywhere above a file (``images``, ``images/train``) moves everything below it, so checking
only the file's own last component is not enough. A refusal names the link's path inside the dataset, never a
server path, and nothing behind the link is read.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from imagerec.config import Settings
from imagerec.datasets.synthetic import write_dataset
from tests.datasets.helpers import SMALL, assert_nothing_registered, stored_folders

URL = "/api/datasets/import-path"
OUTSIDE_MARKER = "outside-secret-token"
REFUSED = "symlink points outside the allowed roots"


@pytest.fixture
def elsewhere(tmp_path: Path) -> Path:
    """A dataset outside the allowed root whose labels would fail validation, quoting their content."""
    folder = write_dataset("detect", tmp_path / "elsewhere", seed=5, **SMALL)
    for label in (folder / "labels").rglob("*.txt"):
        label.write_text(f"{OUTSIDE_MARKER} 0.5 0.5 0.2 0.2\n")
    return folder


def dataset_linking(allowed_root: Path, link: str, target: Path) -> Path:
    """A valid dataset inside the root whose ``link`` (e.g. ``images``) is replaced by a symlink to ``target``."""
    source = write_dataset("detect", allowed_root / "ds", **SMALL)
    shutil.rmtree(source / link)
    (source / link).symlink_to(target, target_is_directory=True)
    return source


def import_folder(client: TestClient, path: str):
    return client.post(URL, json={"name": "x", "task": "detect", "path": path})


def assert_refused_naming(response, link: str, tmp_path: Path) -> None:
    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    assert {"file": link, "line": None, "message": REFUSED} in errors
    assert not any(error["file"].endswith((".jpg", ".txt")) for error in errors)  # no file behind it was read
    assert str(tmp_path) not in response.text and OUTSIDE_MARKER not in response.text


@pytest.mark.parametrize("link", ["images", "labels"])
def test_a_top_folder_symlinked_outside_is_refused_by_name(
    client: TestClient, settings: Settings, allowed_root: Path, tmp_path: Path, elsewhere: Path, link: str
):
    dataset_linking(allowed_root, link, elsewhere / link)

    response = import_folder(client, "ds")

    assert_refused_naming(response, link, tmp_path)
    assert [e["file"] for e in response.json()["errors"]].count(link) == 1  # train and val share one link
    assert_nothing_registered(client, settings)


def test_a_nested_folder_symlinked_outside_is_refused_by_name(
    client: TestClient, settings: Settings, allowed_root: Path, tmp_path: Path, elsewhere: Path
):
    dataset_linking(allowed_root, "images/train", elsewhere / "images" / "train")

    response = import_folder(client, "ds")

    assert_refused_naming(response, "images/train", tmp_path)
    assert_nothing_registered(client, settings)


def test_a_link_inside_the_root_leading_to_a_link_outside_is_refused(
    client: TestClient, settings: Settings, allowed_root: Path, tmp_path: Path, elsewhere: Path
):
    hop = allowed_root / "hop" / "images"
    hop.mkdir(parents=True)
    (hop / "train").symlink_to(elsewhere / "images" / "train", target_is_directory=True)
    shutil.copytree(elsewhere / "images" / "val", hop / "val")
    dataset_linking(allowed_root, "images", hop)  # ds/images → hop/images (inside), whose train leads outside

    response = import_folder(client, "ds")

    assert_refused_naming(response, "images/train", tmp_path)
    assert_nothing_registered(client, settings)


def test_a_link_to_a_link_inside_the_root_that_leads_outside_is_refused(
    client: TestClient, settings: Settings, allowed_root: Path, tmp_path: Path, elsewhere: Path
):
    (allowed_root / "hop").symlink_to(elsewhere / "labels", target_is_directory=True)
    dataset_linking(allowed_root, "labels", allowed_root / "hop")  # ds/labels → hop → outside

    response = import_folder(client, "ds")

    assert_refused_naming(response, "labels", tmp_path)
    assert_nothing_registered(client, settings)


def test_a_subfolder_symlinked_outside_below_a_split_is_refused(
    client: TestClient, settings: Settings, allowed_root: Path, tmp_path: Path, elsewhere: Path
):
    source = write_dataset("detect", allowed_root / "ds", **SMALL)
    (source / "labels" / "train" / "more").symlink_to(elsewhere / "labels" / "train", target_is_directory=True)

    response = import_folder(client, "ds")

    assert_refused_naming(response, "labels/train/more", tmp_path)
    assert_nothing_registered(client, settings)


def test_a_data_yaml_symlinked_outside_is_refused_by_name(
    client: TestClient, settings: Settings, allowed_root: Path, tmp_path: Path, elsewhere: Path
):
    source = write_dataset("detect", allowed_root / "ds", **SMALL)
    (source / "data.yaml").unlink()
    (source / "data.yaml").symlink_to(elsewhere / "data.yaml")

    response = import_folder(client, "ds")

    assert response.status_code == 422
    assert f"data.yaml: {REFUSED}" in response.json()["detail"]
    assert str(tmp_path) not in response.text
    assert_nothing_registered(client, settings)


def test_folder_symlinks_that_stay_inside_the_root_are_followed(
    client: TestClient, settings: Settings, allowed_root: Path
):
    shared = write_dataset("detect", allowed_root / "shared", seed=3, **SMALL)
    source = dataset_linking(allowed_root, "images", shared / "images")
    shutil.rmtree(source / "labels" / "val")
    (source / "labels" / "val").symlink_to(shared / "labels" / "val", target_is_directory=True)

    response = import_folder(client, "ds")

    assert response.status_code == 201, response.text
    assert response.json()["splits"]["train"]["images"] == SMALL["train"]
    [folder] = stored_folders(settings)
    image = folder / "files" / "images" / "train" / "train_0000.jpg"
    assert Path(os.readlink(image)) == shared / "images" / "train" / "train_0000.jpg"  # the real path, inside
