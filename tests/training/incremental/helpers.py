"""What the incremental tests share: a base model that really learned the shapes, registered with the dataset it
was trained on (its lineage), and the request body of a tiny incremental training."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from tests.helpers import register_dataset
from tests.trained_models import register_trained_model

URL = "/api/training/incremental"


def base_with_lineage(client: TestClient, tmp_path: Path, trained_models, task: str) -> tuple[int, dict]:
    """The session's trained model for ``task`` and a registered dataset from the same generator and seed."""
    old_data = register_dataset(client, tmp_path, task, name=f"old-{task}", train=16, val=8, seed=1)
    model_id = register_trained_model(client.app, trained_models(task), dataset_id=old_data["id"])
    return model_id, old_data


def incremental_body(base_model_id: int, dataset_id: int, **fields) -> dict:
    return {"base_model_id": base_model_id, "dataset_id": dataset_id, "epochs": 1, "imgsz": 64, "batch": 8,
            "device": "cpu", "workers": 0, **fields}
