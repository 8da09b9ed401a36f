"""Tiny models that really learned the synthetic shapes, for tests that check where predictions land.

Each task's model is trained once per test session, in-process, on a synthetic dataset kept on disk (so tests
can compare predictions with the shapes drawn in its images). Settings found by trying: mosaic off (at 64 px
it shrinks the shapes to a few pixels), no warm-up, AdamW at 0.01, 40 epochs over 64 images — about 25 s per
task on 2 CPU cores, reaching mAP50 ≈ 0.5 on the held-out split and better on the training images.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from imagerec.config import Settings
from imagerec.datasets.synthetic import class_names, write_dataset
from imagerec.db import unit_of_work
from imagerec.model_versions import service as models_service
from imagerec.model_versions.models import ModelVersion
from imagerec.training import ultralytics_env
from imagerec.training.starting_point import architecture_yaml

TRAIN_ARGS = dict(
    epochs=40, imgsz=64, batch=16, device="cpu", workers=0, plots=False, verbose=False, val=False,
    mosaic=0.0, warmup_epochs=0, optimizer="AdamW", lr0=0.01, scale=0.2, translate=0.1, seed=0,
)


@dataclass(frozen=True)
class TrainedModel:
    task: str
    weights: Path
    dataset_dir: Path  # the synthetic data it was trained on (images/ + labels/, or train/<class>/)
    class_names: list[str]


class TrainedModels:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._models: dict[str, TrainedModel] = {}

    def __call__(self, task: str) -> TrainedModel:
        if task not in self._models:
            self._models[task] = self._train(task)
        return self._models[task]

    def _train(self, task: str) -> TrainedModel:
        ultralytics_env.configure(Settings(data_dir=self.root / "ultralytics-home"))
        from ultralytics import YOLO

        dataset_dir = write_dataset(task, self.root / f"data-{task}", train=64, val=16, imgsz=64, seed=1)
        data = str(dataset_dir)
        if task != "classify":
            content = yaml.safe_load((dataset_dir / "data.yaml").read_text()) | {"path": str(dataset_dir)}
            (dataset_dir / "train.yaml").write_text(yaml.safe_dump(content))
            data = str(dataset_dir / "train.yaml")
        yolo = YOLO(architecture_yaml("yolov8n", task))
        yolo.train(data=data, project=str(self.root / "runs"), name=task, exist_ok=True, **TRAIN_ARGS)
        return TrainedModel(task, Path(yolo.trainer.best), dataset_dir, class_names(task))


def register_trained_model(app, trained: TrainedModel, *, name: str | None = None) -> int:
    """Put ``trained`` into the app's model registry, as a succeeded training would; returns the model id."""
    settings: Settings = app.state.settings
    with unit_of_work(app.state.session_factory) as session:
        model = ModelVersion(
            name=name or f"trained-{trained.task}",
            task=trained.task,
            architecture="yolov8n",
            class_names=trained.class_names,
            imgsz=64,
            metrics={},
            weights_path=models_service.store_weights(settings=settings, source=trained.weights),
            training_mode="regular",
        )
        models_service.register(session, model=model)
        return model.id
