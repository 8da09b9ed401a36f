"""Bad uploads: each is a clear 4xx naming the problem, leaves no row, and writes nothing outside the data dir."""

from __future__ import annotations

import io
import stat
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from imagerec.config import Settings
from tests.datasets.helpers import assert_nothing_registered, dataset_zip, upload
from tests.helpers import api_client


def zip_bytes(members: dict[str, bytes], *, symlinks: dict[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, target)
    return buffer.getvalue()


def detail(response) -> str:
    return response.json()["detail"]


def error_entries(response) -> list[dict]:
    return response.json().get("errors", [])


def test_parent_dir_member_is_refused(client: TestClient, settings: Settings, tmp_path: Path):
    response = upload(client, zip_bytes({"images/train/a.jpg": b"x", "../../../../evil.txt": b"owned"}))

    assert response.status_code == 400
    assert "../../../../evil.txt" in detail(response)
    assert not list(tmp_path.rglob("evil.txt"))
    assert_nothing_registered(client, settings)


def test_absolute_member_is_refused(client: TestClient, settings: Settings, tmp_path: Path):
    target = tmp_path / "absolute-evil.txt"
    response = upload(client, zip_bytes({str(target): b"owned"}))

    assert response.status_code == 400
    assert "absolute" in detail(response)
    assert not target.exists()
    assert_nothing_registered(client, settings)


@pytest.mark.parametrize("name", ["C:/evil.txt", "images\\..\\evil.txt"])
def test_drive_letter_and_backslash_members_are_refused(client: TestClient, settings: Settings, name: str):
    response = upload(client, zip_bytes({name: b"owned"}))

    assert response.status_code == 400
    assert name in detail(response)
    assert_nothing_registered(client, settings)


def test_symlink_member_is_refused(client: TestClient, settings: Settings):
    response = upload(client, zip_bytes({"data.yaml": b"names: [a]"}, symlinks={"images/train/x.jpg": "/etc/passwd"}))

    assert response.status_code == 400
    assert "images/train/x.jpg" in detail(response)
    assert "link" in detail(response)
    assert_nothing_registered(client, settings)


def test_not_a_zip_is_415(client: TestClient, settings: Settings):
    response = upload(client, b"\x89PNG\r\n\x1a\n not a zip at all")

    assert response.status_code == 415
    assert "not a zip" in detail(response)
    assert_nothing_registered(client, settings)


def test_truncated_zip_is_400(client: TestClient, settings: Settings, tmp_path: Path):
    content = dataset_zip(tmp_path, "detect").read_bytes()

    response = upload(client, content[: len(content) // 2])

    assert response.status_code == 400
    assert "corrupt" in detail(response)
    assert_nothing_registered(client, settings)


def test_member_with_damaged_data_is_400(client: TestClient, settings: Settings):
    content = bytearray(zip_bytes({"data.yaml": b"names: [a]\n" * 200}))
    content[40:60] = b"\x00" * 20  # inside the compressed data of the only member

    response = upload(client, bytes(content))

    assert response.status_code == 400
    assert "data.yaml" in detail(response) or "corrupt" in detail(response)
    assert_nothing_registered(client, settings)


def test_wrong_layout_names_missing_folders(client: TestClient, settings: Settings):
    response = upload(client, zip_bytes({"pictures/a.jpg": b"x", "data.yaml": b"names: [a]"}))

    assert response.status_code == 422
    missing = {entry["file"] for entry in error_entries(response)}
    assert "images/train" in missing  # a missing val split is made from train; labels may all be backgrounds
    assert "required folder is missing" in detail(response)
    assert_nothing_registered(client, settings)


def test_out_of_range_class_names_file_and_line(client: TestClient, settings: Settings, tmp_path: Path):
    def break_labels(folder: Path) -> None:
        label = folder / "labels" / "train" / "train_0001.txt"
        label.write_text(label.read_text() + "7 0.5 0.5 0.2 0.2\n")

    response = upload(client, dataset_zip(tmp_path, "detect", mutate=break_labels))

    assert response.status_code == 422
    [problem] = error_entries(response)
    assert problem["file"] == "labels/train/train_0001.txt"
    assert problem["line"] >= 2
    assert "class id 7" in problem["message"]
    assert_nothing_registered(client, settings)


def test_out_of_range_coordinates_are_reported(client: TestClient, settings: Settings, tmp_path: Path):
    def break_polygon(folder: Path) -> None:
        (folder / "labels" / "val" / "val_0000.txt").write_text("0 0.1 0.1 1.5 0.1 0.5 0.9\n")

    response = upload(client, dataset_zip(tmp_path, "segment", mutate=break_polygon), task="segment")

    assert response.status_code == 422
    assert error_entries(response) == [
        {"file": "labels/val/val_0000.txt", "line": 1, "message": error_entries(response)[0]["message"]}
    ]
    assert "1.5" in error_entries(response)[0]["message"]
    assert_nothing_registered(client, settings)


def test_corrupt_image_is_named(client: TestClient, settings: Settings, tmp_path: Path):
    def corrupt(folder: Path) -> None:
        (folder / "images" / "train" / "train_0003.jpg").write_bytes(b"\xff\xd8 garbage, not a jpeg")

    response = upload(client, dataset_zip(tmp_path, "detect", mutate=corrupt))

    assert response.status_code == 422
    assert [entry["file"] for entry in error_entries(response)] == ["images/train/train_0003.jpg"]
    assert "cannot be read" in error_entries(response)[0]["message"]
    assert_nothing_registered(client, settings)


def test_every_problem_is_reported_at_once(client: TestClient, settings: Settings, tmp_path: Path):
    def break_many(folder: Path) -> None:
        (folder / "labels" / "train" / "train_0000.txt").write_text("0 0.5 0.5 0.2\nx 0.5 0.5 0.2 0.2\n")
        (folder / "images" / "val" / "val_0001.jpg").write_bytes(b"nope")

    response = upload(client, dataset_zip(tmp_path, "detect", mutate=break_many))

    assert response.status_code == 422
    assert detail(response).startswith("dataset is invalid: 3 problems")
    places = [(entry["file"], entry["line"]) for entry in error_entries(response)]
    assert places == [
        ("labels/train/train_0000.txt", 1),
        ("labels/train/train_0000.txt", 2),
        ("images/val/val_0001.jpg", None),
    ]


def test_unknown_task_is_422(client: TestClient, settings: Settings, tmp_path: Path):
    response = upload(client, dataset_zip(tmp_path, "detect"), task="teleport")

    assert response.status_code == 422
    assert "task" in response.text
    assert_nothing_registered(client, settings)


def test_pose_without_kpt_shape_is_422(client: TestClient, settings: Settings, tmp_path: Path):
    def drop_kpt_shape(folder: Path) -> None:
        (folder / "data.yaml").write_text("names: [triangle]\n")

    response = upload(client, dataset_zip(tmp_path, "pose", mutate=drop_kpt_shape), task="pose")

    assert response.status_code == 422
    assert "kpt_shape" in detail(response)
    assert_nothing_registered(client, settings)


def test_pose_with_bad_flip_idx_is_422(client: TestClient, tmp_path: Path):
    def bad_flip(folder: Path) -> None:
        (folder / "data.yaml").write_text("names: [triangle]\nkpt_shape: [3, 3]\nflip_idx: [0, 1, 1]\n")

    response = upload(client, dataset_zip(tmp_path, "pose", mutate=bad_flip), task="pose")

    assert response.status_code == 422
    assert "flip_idx" in detail(response)


def write_data_yaml(text: str):
    def mutate(folder: Path) -> None:
        (folder / "data.yaml").write_text(text)

    return mutate


def test_nc_that_disagrees_with_names_is_422_naming_data_yaml(
    client: TestClient, settings: Settings, tmp_path: Path
):
    mutate = write_data_yaml("names: [square, circle]\nnc: 3\n")

    response = upload(client, dataset_zip(tmp_path, "detect", mutate=mutate))

    assert response.status_code == 422
    message = "'nc' is 3 but 'names' lists 2 classes"
    assert detail(response) == f"data.yaml: {message}"
    assert error_entries(response) == [{"file": "data.yaml", "line": None, "message": message}]
    assert_nothing_registered(client, settings)


@pytest.mark.parametrize("nc", ["-1", "'3'", "2.5", "true", "[3]"])
def test_nc_that_is_not_a_non_negative_integer_is_422(client: TestClient, settings: Settings, tmp_path: Path,
                                                      nc: str):
    response = upload(client, dataset_zip(tmp_path, "detect", mutate=write_data_yaml(
        f"names: [square, circle, triangle]\nnc: {nc}\n")))

    assert response.status_code == 422
    [problem] = error_entries(response)
    assert problem["file"] == "data.yaml" and "'nc' must be a non-negative integer" in problem["message"]
    assert_nothing_registered(client, settings)


def test_nc_that_agrees_with_names_is_accepted(client: TestClient, tmp_path: Path):
    mutate = write_data_yaml("names: [square, circle, triangle]\nnc: 3\n")

    response = upload(client, dataset_zip(tmp_path, "detect", mutate=mutate))

    assert response.status_code == 201, response.text
    assert response.json()["class_names"] == ["square", "circle", "triangle"]


def test_detect_without_data_yaml_is_422(client: TestClient, settings: Settings, tmp_path: Path):
    response = upload(client, dataset_zip(tmp_path, "detect", mutate=lambda folder: (folder / "data.yaml").unlink()))

    assert response.status_code == 422
    assert "data.yaml" in detail(response)
    assert_nothing_registered(client, settings)


@pytest.fixture
def tight_settings(tmp_path: Path, allowed_root: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "tight-data",
        allowed_roots=[allowed_root],
        upload_max_bytes=20_000,
        zip_max_uncompressed_bytes=100_000,
        zip_max_members=50,
    )


@pytest.fixture
def tight_client(tight_settings: Settings) -> Iterator[TestClient]:
    with api_client(tight_settings) as test_client:
        yield test_client


def test_too_large_upload_is_413(tight_client: TestClient, tight_settings: Settings):
    response = upload(tight_client, b"PK\x03\x04" + b"\x00" * 30_000)

    assert response.status_code == 413
    assert "20000" in detail(response)
    assert_nothing_registered(tight_client, tight_settings)


def test_zip_bomb_is_413(tight_client: TestClient, tight_settings: Settings):
    response = upload(tight_client, zip_bytes({"images/train/big.png": b"\x00" * 1_000_000}))

    assert response.status_code == 413
    assert "unpacks" in detail(response)
    assert_nothing_registered(tight_client, tight_settings)


def test_too_many_members_is_413(tight_client: TestClient, tight_settings: Settings):
    response = upload(tight_client, zip_bytes({f"images/train/{index}.jpg": b"" for index in range(60)}))

    assert response.status_code == 413
    assert "60 members" in detail(response)
    assert_nothing_registered(tight_client, tight_settings)


@pytest.mark.parametrize("name", ["   ", "x" * 201])
def test_blank_or_long_name_is_422(client: TestClient, settings: Settings, tmp_path: Path, name: str):
    response = upload(client, dataset_zip(tmp_path, "detect"), name=name)

    assert response.status_code == 422
    assert "name" in response.text
    assert_nothing_registered(client, settings)
