"""YOLO datasets in the layouts real tools write, uploaded over HTTP: Roboflow, image lists, classes.txt, CVAT
YOLO 1.1, data without a val split, and YAML paths that try to leave the upload."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from imagerec.config import Settings
from imagerec.datasets.synthetic import write_dataset, zip_folder
from tests.datasets.helpers import assert_nothing_registered, stored_folders


def _post(client: TestClient, folder: Path, tmp_path: Path, *, task: str = "detect", name: str = "ds", **fields):
    archive = zip_folder(folder, tmp_path / f"{folder.name}.zip")
    return client.post("/api/datasets", data={"name": name, "task": task, **fields},
                       files={"file": ("d.zip", archive.read_bytes(), "application/zip")})


def _roboflow(tmp_path: Path) -> Path:
    """Roboflow's YOLOv8 export: train/images + train/labels, valid/…, test/…, data.yaml with ../ paths."""
    source = write_dataset("detect", tmp_path / "synthetic", train=6, val=3, imgsz=32)
    out = tmp_path / "roboflow"
    for split, target in (("train", "train"), ("val", "valid")):
        for kind in ("images", "labels"):
            shutil.copytree(source / kind / split, out / target / kind)
    shutil.copytree(out / "valid", out / "test")
    names = yaml.safe_load((source / "data.yaml").read_text())["names"]
    (out / "data.yaml").write_text(yaml.safe_dump({
        "train": "../train/images", "val": "../valid/images", "test": "../test/images",
        "nc": len(names), "names": list(names.values()) if isinstance(names, dict) else names,
        "roboflow": {"workspace": "w", "project": "p", "version": 1}}))
    return out


def test_roboflow_export_imports_with_its_three_splits(client: TestClient, tmp_path: Path):
    response = _post(client, _roboflow(tmp_path), tmp_path)

    assert response.status_code == 201, response.text
    dataset = response.json()
    assert dataset["format"] == "yolo" and "data.yaml" in dataset["format_reason"]
    assert [dataset["splits"][split]["images"] for split in ("train", "val", "test")] == [6, 3, 3]
    assert dataset["splits"]["train"]["instances"] > 0


def test_image_lists_and_path_key(client: TestClient, tmp_path: Path):
    source = write_dataset("detect", tmp_path / "lists" / "data", train=4, val=2, imgsz=32)
    root = tmp_path / "lists"
    (root / "train.txt").write_text("".join(f"./data/images/train/{p.name}\n"
                                            for p in sorted((source / "images" / "train").iterdir())))
    (root / "val.txt").write_text("".join(f"data/images/val/{p.name}\n"
                                          for p in sorted((source / "images" / "val").iterdir())))
    names = yaml.safe_load((source / "data.yaml").read_text())["names"]
    (source / "data.yaml").unlink()
    (root / "data.yaml").write_text(yaml.safe_dump({"path": "/somewhere/else", "train": "train.txt",
                                                    "val": "val.txt", "names": names}))

    response = _post(client, root, tmp_path)

    assert response.status_code == 201, response.text
    assert response.json()["splits"]["train"]["images"] == 4
    assert response.json()["splits"]["val"]["images"] == 2


def test_yaml_paths_that_leave_the_upload_are_refused(client: TestClient, settings: Settings, tmp_path: Path):
    source = write_dataset("detect", tmp_path / "escape", train=4, val=2, imgsz=32)
    data = yaml.safe_load((source / "data.yaml").read_text())
    (source / "data.yaml").write_text(yaml.safe_dump({**data, "train": "../../../etc", "val": "/etc/passwd"}))

    response = _post(client, source, tmp_path)

    assert response.status_code == 422
    messages = [entry["message"] for entry in response.json()["errors"]]
    assert any("leaves the dataset folder" in message for message in messages), messages
    assert_nothing_registered(client, settings)


def test_labelimg_classes_txt_with_labels_beside_images(client: TestClient, tmp_path: Path):
    source = write_dataset("detect", tmp_path / "synthetic", train=6, val=0, imgsz=32)
    out = tmp_path / "labelimg"
    out.mkdir()
    for path in (source / "images" / "train").iterdir():
        shutil.copy(path, out / path.name)
        shutil.copy(source / "labels" / "train" / f"{path.stem}.txt", out / f"{path.stem}.txt")
    (out / "classes.txt").write_text("square\ncircle\ntriangle\n")

    response = _post(client, out, tmp_path)

    assert response.status_code == 201, response.text
    dataset = response.json()
    assert dataset["class_names"] == ["square", "circle", "triangle"]
    assert "classes.txt" in dataset["format_reason"]
    assert dataset["splits"]["train"]["images"] + dataset["splits"]["val"]["images"] == 6
    assert dataset["splits"]["val"]["images"] >= 1


def test_cvat_yolo_1_1(client: TestClient, tmp_path: Path):
    source = write_dataset("detect", tmp_path / "synthetic", train=4, val=2, imgsz=32)
    out = tmp_path / "cvat"
    for split, folder in (("train", "obj_train_data"), ("val", "obj_valid_data")):
        (out / folder).mkdir(parents=True)
        for path in (source / "images" / split).iterdir():
            shutil.copy(path, out / folder / path.name)
            shutil.copy(source / "labels" / split / f"{path.stem}.txt", out / folder / f"{path.stem}.txt")
    (out / "obj.names").write_text("square\ncircle\ntriangle\n")
    (out / "obj.data").write_text("classes = 3\ntrain = data/train.txt\nnames = data/obj.names\n")

    response = _post(client, out, tmp_path)

    assert response.status_code == 201, response.text
    assert response.json()["splits"]["train"]["images"] == 4
    assert response.json()["splits"]["val"]["images"] == 2


def test_missing_val_is_split_deterministically(client: TestClient, settings: Settings, tmp_path: Path):
    source = write_dataset("detect", tmp_path / "trainonly", train=20, val=0, imgsz=32)
    shutil.rmtree(source / "images" / "val", ignore_errors=True)

    first = _post(client, source, tmp_path, name="a", val_ratio="0.25", test_ratio="0.1", seed="3")
    second = _post(client, source, tmp_path, name="b", val_ratio="0.25", test_ratio="0.1", seed="3")

    assert first.status_code == 201 and second.status_code == 201, first.text
    splits = first.json()["splits"]
    assert splits["val"]["images"] >= 4 and splits["test"]["images"] >= 1
    assert sum(splits[split]["images"] for split in ("train", "val", "test")) == 20
    names = [sorted(p.relative_to(folder).as_posix() for p in (folder / "files" / "images").rglob("*.jpg"))
             for folder in stored_folders(settings)]
    assert names[0] == names[1]
    assert not any("_unsplit" in path.as_posix() for path in stored_folders(settings)[0].rglob("*"))


def test_resplit_on_request(client: TestClient, tmp_path: Path):
    source = write_dataset("detect", tmp_path / "full", train=12, val=4, imgsz=32)

    response = _post(client, source, tmp_path, resplit="true", val_ratio="0.5")

    assert response.status_code == 201, response.text
    assert response.json()["splits"]["val"]["images"] >= 7


def test_bad_split_options_are_422(client: TestClient, settings: Settings, tmp_path: Path):
    source = write_dataset("detect", tmp_path / "opts", train=4, val=2, imgsz=32)

    for fields in ({"val_ratio": "0.95"}, {"val_ratio": "0.6", "test_ratio": "0.6"}, {"seed": "-1"},
                   {"kpt_shape": "17"}, {"format": "pascal"}):
        response = _post(client, source, tmp_path, **fields)
        assert response.status_code == 422, (fields, response.text)
    assert_nothing_registered(client, settings)


def test_classify_folders_without_splits(client: TestClient, tmp_path: Path):
    source = write_dataset("classify", tmp_path / "cls", train=12, val=0, imgsz=32)
    out = tmp_path / "flat"
    shutil.copytree(source / "train", out)

    response = _post(client, out, tmp_path, task="classify")

    assert response.status_code == 201, response.text
    dataset = response.json()
    assert dataset["format"] == "imagefolder"
    assert dataset["splits"]["val"]["images"] >= 1
    assert dataset["splits"]["train"]["images"] + dataset["splits"]["val"]["images"] == 12


def test_format_that_cannot_hold_the_task_is_422(client: TestClient, tmp_path: Path):
    source = write_dataset("classify", tmp_path / "cls", train=4, val=2, imgsz=32)

    response = _post(client, source, tmp_path, task="classify", format="voc")

    assert response.status_code == 422
    assert "cannot hold a classify dataset" in response.json()["detail"]


def test_stats_and_yolo_export_round_trip(client: TestClient, settings: Settings, tmp_path: Path):
    first = _post(client, _roboflow(tmp_path), tmp_path, name="first").json()

    stats = client.get(f"/api/datasets/{first['id']}/stats").json()
    exported = client.get(f"/api/datasets/{first['id']}/export", params={"format": "yolo"})
    (tmp_path / "export.zip").write_bytes(exported.content)
    again = client.post("/api/datasets", data={"name": "again", "task": "detect"},
                        files={"file": ("e.zip", exported.content, "application/zip")}).json()

    assert exported.status_code == 200 and exported.headers["content-type"] == "application/zip"
    assert again["splits"] == first["splits"]
    assert again["class_names"] == first["class_names"]
    assert stats["splits"]["train"]["images"] == 6
    assert sum(c["instances"] for c in stats["splits"]["train"]["classes"].values()) == first["splits"]["train"][
        "instances"]
    assert any("appear in both val and test" in warning for warning in stats["warnings"])  # test is a copy of val
    assert list((settings.data_dir / "tmp").iterdir()) == []  # the export's work folder went with the response


def test_an_image_list_past_its_size_limit_is_422(client: TestClient, settings: Settings, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch):
    from imagerec.datasets.formats import yolo

    source = write_dataset("detect", tmp_path / "biglist", train=4, val=2, imgsz=32)
    (source / "train.txt").write_text("".join(f"images/train/{p.name}\n"
                                              for p in sorted((source / "images" / "train").iterdir())))
    data = yaml.safe_load((source / "data.yaml").read_text())
    (source / "data.yaml").write_text(yaml.safe_dump({**data, "train": "train.txt", "val": "images/val"}))
    monkeypatch.setattr(yolo, "LIST_MAX_BYTES", 10)

    response = _post(client, source, tmp_path)

    assert response.status_code == 422, response.text
    assert "train.txt is larger than 10 bytes" in response.json()["detail"]
    assert_nothing_registered(client, settings)
