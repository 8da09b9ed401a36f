"""Teachers for the distillation tests: yolov8s (wider than the yolov8n students, so adapters are exercised)
trained for one epoch on the synthetic data, once per session. Their quality does not matter here; that they are
real Ultralytics checkpoints with the synthetic class names does."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.trained_models import TrainedModels, register_weights

TINY = dict(imgsz=64, batch=8, device="cpu", workers=0, plots=False, verbose=False, val=False, mosaic=0.0,
            seed=0)


@pytest.fixture(scope="session")
def teachers(tmp_path_factory) -> TrainedModels:
    return TrainedModels(tmp_path_factory.mktemp("distill-teachers"), architecture="yolov8s",
                         train_args=dict.fromkeys(("detect", "segment", "pose", "classify"), TINY | {"epochs": 1}),
                         data_sizes=dict(train=16, val=8, imgsz=64, seed=3))


def register_model(app, *, task: str, weights: Path, class_names: list[str], architecture: str = "yolov8s") -> int:
    """A teacher's registry row (any class names, for the mismatch tests); returns the model id."""
    return register_weights(app, task=task, weights=weights, class_names=class_names, architecture=architecture,
                            name=f"teacher-{task}")
