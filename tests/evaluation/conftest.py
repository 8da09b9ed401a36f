"""Shared pieces of the evaluation API tests: a registered dataset in a trained model's classes, waiting."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from tests.helpers import register_dataset, wait_until_finished
from tests.trained_models import register_trained_model

SAME_DATA = dict(train=16, val=16, imgsz=64, seed=1)  # the trained models' own val images (seed 1)


def evaluate(client, body: dict) -> dict:
    response = client.post("/api/evaluations", json=body)
    assert response.status_code == 202, response.text
    started = response.json()
    task = wait_until_finished(client, started["task_id"])
    assert task["status"] == "succeeded", task
    return client.get(f"/api/evaluations/{started['id']}").json()


def assert_real_png(content: bytes) -> Image.Image:
    assert content[:8] == b"\x89PNG\r\n\x1a\n"
    image = Image.open(io.BytesIO(content))
    image.load()
    pixels = np.asarray(image.convert("L"), dtype=float)
    assert pixels.std() > 5, "the PNG is blank"
    return image


@pytest.fixture
def registered(client, tmp_path, trained_models):
    """``registered(task)`` → (model id, dataset id) of the session's trained model and a dataset like its data."""

    def make(task: str, **sizes) -> tuple[int, int]:
        trained = trained_models(task)
        model_id = register_trained_model(client.app, trained)
        dataset = register_dataset(client, tmp_path, task, **(SAME_DATA | sizes))
        return model_id, dataset["id"]

    return make
