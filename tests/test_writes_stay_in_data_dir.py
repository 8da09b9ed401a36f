"""The real server, started from a user's fresh shell, writes nothing into HOME or the temp folder: a training
child and an annotation (which exports to ONNX and runs ONNX Runtime) keep every setting, cache and database
inside the data dir."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from imagerec.datasets.synthetic import write_dataset_zip
from tests.helpers import TERMINAL, tiny_training, wait_for
from tests.server_process import ServerProcess, clean_env

pytestmark = pytest.mark.training


def _written(folders: list[Path]) -> list[str]:
    return sorted(str(path) for folder in folders for path in folder.rglob("*"))


def _train_one_epoch(client: httpx.Client, tmp_path: Path) -> int:
    archive = write_dataset_zip("detect", tmp_path / "detect.zip", train=8, val=4)
    response = client.post("/api/datasets", data={"name": "shapes", "task": "detect"},
                           files={"file": (archive.name, archive.read_bytes(), "application/zip")})
    assert response.status_code == 201, response.text
    response = client.post("/api/training/regular", json=tiny_training(response.json()["id"]))
    assert response.status_code == 202, response.text
    task = wait_for(client, response.json()["id"], lambda t: t["status"] in TERMINAL)
    assert task["status"] == "succeeded", task["error"]
    return task["model_id"]


def _noise_jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buffer, "JPEG")
    return buffer.getvalue()


def test_training_and_annotation_write_nothing_outside_the_data_dir(tmp_path: Path) -> None:
    outside = [tmp_path / "home", tmp_path / "temp"]
    for folder in outside:
        folder.mkdir()
    # clean_env: none of the variables this test process may have set for Ultralytics, matplotlib or ONNX Runtime
    # by training in-process; the server must set them itself. ONNX Runtime even where CUDA is present.
    env = clean_env(HOME=str(outside[0]), TMPDIR=str(outside[1]))
    with ServerProcess(tmp_path / "data", tmp_path / "server.log", env=env,
                       settings={"annotate_runtime": "onnx"}) as server:
        model_id = _train_one_epoch(server.client, tmp_path)
        assert _written(outside) == [], "the training child wrote outside the data dir"

        response = server.client.post("/api/auto_annotate", data={"model_id": model_id},
                                      files=[("files", ("noise.jpg", _noise_jpeg(), "image/jpeg"))])
        assert response.status_code == 200, response.text
        assert list((tmp_path / "data" / "models").rglob("*.onnx")), "the annotation did not run on ONNX Runtime"
        assert _written(outside) == [], "the annotation wrote outside the data dir"
    assert _written(outside) == [], "the server's shutdown wrote outside the data dir"
