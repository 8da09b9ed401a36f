"""Unit checks of the label-line and metadata rules, and of the synthetic generator the other tests rely on."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from imagerec.config import Settings
from imagerec.datasets import service
from imagerec.datasets.synthetic import write_dataset, write_dataset_zip
from imagerec.datasets.validation import check_image, check_label_line, read_metadata
from imagerec.errors import Unprocessable
from tests.datasets.helpers import SMALL, files_under, stored_folders


def problem(line: str, task: str = "detect", classes: int = 3, kpt_shape: list[int] | None = None) -> str | None:
    return check_label_line(line.split(), task=task, class_count=classes, kpt_shape=kpt_shape)


@pytest.mark.parametrize(
    ("line", "task", "kpt_shape"),
    [
        ("2 0.5 0.5 0.2 0.3", "detect", None),
        ("0 0 0 1 0 1 1", "segment", None),
        ("1.0 0.5 0.5 1 1", "detect", None),
        ("0 0.5 0.5 0.2 0.2 0.1 0.1 2 0.2 0.2 0 0 0 1", "pose", [3, 3]),
        ("0 0.5 0.5 0.2 0.2 0.1 0.1 0.3 0.3", "pose", [2, 2]),
    ],
)
def test_valid_lines(line: str, task: str, kpt_shape: list[int] | None):
    assert problem(line, task, kpt_shape=kpt_shape) is None


@pytest.mark.parametrize(
    ("line", "task", "kpt_shape", "expected"),
    [
        ("0 0.5 0.5 0.2", "detect", None, "expected 5 values"),
        ("3 0.5 0.5 0.2 0.2", "detect", None, "class id 3 is out of range"),
        ("-1 0.5 0.5 0.2 0.2", "detect", None, "class id -1"),
        ("0.5 0.5 0.5 0.2 0.2", "detect", None, "class id 0.5"),
        ("0 0.5 nan 0.2 0.2", "detect", None, "finite"),
        ("0 0.5 abc 0.2 0.2", "detect", None, "'abc' is not a number"),
        ("0 0.5 -0.1 0.2 0.2", "detect", None, "outside [0, 1]"),
        ("0 0.5 0.5 0.2 0", "detect", None, "width and height"),
        ("0 0.1 0.1 0.2 0.2", "segment", None, "at least 3 x y pairs"),
        ("0 0.1 0.1 0.2 0.2 0.3 0.3 0.4", "segment", None, "odd number"),
        ("0 0.5 0.5 0.2 0.2 0.1 0.1 2", "pose", [3, 3], "expected 14 values"),
        ("0 0.5 0.5 0.2 0.2 0.1 0.1 3 0.2 0.2 0 0 0 1", "pose", [3, 3], "visibility"),
        ("0 0.5 0.5 0.2 0.2 1.2 0.1 2 0.2 0.2 0 0 0 1", "pose", [3, 3], "1.2 is outside"),
    ],
)
def test_invalid_lines(line: str, task: str, kpt_shape: list[int] | None, expected: str):
    assert expected in (problem(line, task, kpt_shape=kpt_shape) or "")


def test_names_as_contiguous_mapping(tmp_path: Path):
    metadata = read_metadata(task="detect", data_yaml=("data.yaml", b"names: {0: cat, 1: dog}"), files_dir=tmp_path)

    assert metadata.class_names == ["cat", "dog"]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"names: {0: cat, 2: dog}", "0..n-1"),
        (b"names: []", "'names' is missing"),
        (b"train: images/train", "'names' is missing"),
        (b"names: [a\n", "not valid YAML"),
        (b"- a\n- b\n", "mapping"),
    ],
)
def test_bad_names(tmp_path: Path, content: bytes, expected: str):
    with pytest.raises(Unprocessable, match=expected):
        read_metadata(task="detect", data_yaml=("data.yaml", content), files_dir=tmp_path)


@pytest.mark.parametrize("kpt_shape", ["[3]", "[3, 4]", "[0, 2]", "[3.0, 3]", "'3,3'"])
def test_bad_kpt_shape(tmp_path: Path, kpt_shape: str):
    content = f"names: [a]\nkpt_shape: {kpt_shape}\n".encode()

    with pytest.raises(Unprocessable, match="kpt_shape"):
        read_metadata(task="pose", data_yaml=("data.yaml", content), files_dir=tmp_path)


def test_flip_idx_must_be_a_permutation(tmp_path: Path):
    good = read_metadata(task="pose", data_yaml=("d.yaml", b"names: [a]\nkpt_shape: [2, 2]\nflip_idx: [1, 0]"),
                         files_dir=tmp_path)
    assert good.flip_idx == [1, 0]
    with pytest.raises(Unprocessable, match="permutation"):
        read_metadata(task="pose", data_yaml=("d.yaml", b"names: [a]\nkpt_shape: [2, 2]\nflip_idx: [0, 2]"),
                      files_dir=tmp_path)


def test_image_pixel_limit_and_minimum_size(tmp_path: Path):
    big, tiny = tmp_path / "big.png", tmp_path / "tiny.png"
    Image.new("RGB", (200, 100)).save(big)
    Image.new("RGB", (5, 40)).save(tiny)

    assert "more than the limit of 10000" in check_image(big, max_pixels=10_000)[0]
    assert check_image(big, max_pixels=20_000) == (None, None)
    assert "at least 10" in check_image(tiny, max_pixels=20_000)[0]


def test_truncated_jpeg_is_a_warning(tmp_path: Path):
    path = tmp_path / "cut.jpg"
    Image.new("RGB", (32, 32), "red").save(path)
    path.write_bytes(path.read_bytes()[:-2])

    error, warning = check_image(path, max_pixels=10_000)

    assert error is None and "truncated" in warning


def test_synthetic_is_deterministic_by_seed(tmp_path: Path):
    first = write_dataset("segment", tmp_path / "a", seed=5, **SMALL)
    second = write_dataset("segment", tmp_path / "b", seed=5, **SMALL)
    other = write_dataset("segment", tmp_path / "c", seed=6, **SMALL)

    assert files_under(first) == files_under(second)
    assert all((first / f).read_bytes() == (second / f).read_bytes() for f in files_under(first))
    label = "labels/train/train_0000.txt"
    assert (first / label).read_text() != (other / label).read_text()


def test_synthetic_zip_has_no_top_folder(tmp_path: Path):
    import zipfile

    names = zipfile.ZipFile(write_dataset_zip("classify", tmp_path / "c.zip", **SMALL)).namelist()

    assert {name.split("/")[0] for name in names} == {"train", "val"}


def test_rolled_back_registration_leaves_no_folder(client: TestClient, settings: Settings, tmp_path: Path):
    archive = write_dataset_zip("detect", tmp_path / "d.zip", **SMALL)
    session = client.app.state.session_factory()
    with archive.open("rb") as upload:
        service.register_upload(session=session, settings=settings, name="later", task="detect", upload=upload)
    assert len(stored_folders(settings)) == 1

    session.rollback()
    session.close()

    assert stored_folders(settings) == []
