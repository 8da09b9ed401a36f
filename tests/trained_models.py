"""Tiny models that really learned the synthetic shapes, for tests that check where predictions land.

Each task's model is trained once per test session, in-process, on a synthetic dataset kept on disk (so tests
can compare predictions with the shapes drawn in its images). Settings found by trying (64 training images,
64 px, 2 CPU cores; quality measured on those training images, which is what the tests predict on):

- ``nbs`` (Ultralytics' nominal batch size, default 64) makes the trainer accumulate gradients up to 64 images:
  with 64 images that is one optimizer step per epoch. ``nbs`` = ``batch`` steps every batch — the change that
  took detect from about half of the shapes found with the right class to nearly all;
- detection-family models confuse square and circle at 10–25 px: ``cls=2.0`` weighs the class loss up;
- mosaic off (at 64 px it shrinks the shapes to a few pixels), no warm-up, AdamW;
- classify: lower lr and no RandAugment/erasing, which hide a 15-px shape in noise.

Measured on one run of all four (train-image quality; wall time on 2 busy cores, 107 s together): detect 0.98 of
the drawn shapes found with the right class, 28 s; segment 0.94, polygon IoU 0.81, 40 s; pose 1.0, keypoints
1.2 px from the corners (median), 20 s; classify top-1 0.94, 18 s.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from imagerec.config import Settings
from imagerec.datasets.synthetic import write_dataset
from imagerec.db import unit_of_work
from imagerec.model_versions import service as models_service
from imagerec.model_versions.models import ModelVersion
from imagerec.training import ultralytics_env
from imagerec.training.starting_point import architecture_yaml

COMMON_ARGS = dict(
    imgsz=64, device="cpu", workers=0, plots=False, verbose=False, val=False, mosaic=0.0, warmup_epochs=0,
    optimizer="AdamW", seed=0,
)
_INSTANCES = dict(batch=8, nbs=8, lr0=0.003, cls=2.0, scale=0.2, translate=0.1)
TRAIN_ARGS: dict[str, dict] = {
    "detect": COMMON_ARGS | _INSTANCES | dict(epochs=30),
    "segment": COMMON_ARGS | _INSTANCES | dict(epochs=35),
    "pose": COMMON_ARGS | _INSTANCES | dict(epochs=20),
    "classify": COMMON_ARGS | dict(epochs=50, batch=16, nbs=16, lr0=0.001, auto_augment=None, erasing=0.0),
}


@dataclass(frozen=True)
class TrainedModel:
    task: str
    weights: Path
    dataset_dir: Path  # the synthetic data it was trained on (images/ + labels/, or train/<class>/)
    class_names: list[str]
    data: str | None = None  # what train(data=…) took: a YAML (detection family) or the folder (classify)
    architecture: str = "yolov8n"


class TrainedModels:
    """One model per task, trained on first use. The defaults make models that really learned the shapes;
    other callers (distillation's teachers) pick another architecture, arguments and data size."""

    def __init__(self, root: Path, *, architecture: str = "yolov8n", train_args: dict[str, dict] = TRAIN_ARGS,
                 data_sizes: dict | None = None) -> None:
        self.root = root
        self.architecture = architecture
        self.train_args = train_args
        self.data_sizes = data_sizes or dict(train=64, val=16, imgsz=64, seed=1)
        self._models: dict[str, TrainedModel] = {}

    def __call__(self, task: str) -> TrainedModel:
        if task not in self._models:
            self._models[task] = self._train(task)
        return self._models[task]

    def _train(self, task: str) -> TrainedModel:
        ultralytics_env.configure(Settings(data_dir=self.root / "ultralytics-home"))
        from ultralytics import YOLO

        dataset_dir = write_dataset(task, self.root / f"data-{task}", **self.data_sizes)
        data = str(dataset_dir)
        if task != "classify":
            content = yaml.safe_load((dataset_dir / "data.yaml").read_text()) | {"path": str(dataset_dir)}
            (dataset_dir / "train.yaml").write_text(yaml.safe_dump(content))
            data = str(dataset_dir / "train.yaml")
        yolo = YOLO(architecture_yaml(self.architecture, task))
        yolo.train(data=data, project=str(self.root / "runs"), name=task, exist_ok=True, **self.train_args[task])
        names = yolo.trainer.data["names"]  # classify: sorted folder names, not the generator's order
        return TrainedModel(task, Path(yolo.trainer.best), dataset_dir, [names[i] for i in sorted(names)], data,
                            self.architecture)


def register_weights(app, *, task: str, weights: Path, class_names: list[str], architecture: str = "yolov8n",
                     name: str | None = None, dataset_id: int | None = None) -> int:
    """A registry row as a succeeded training leaves it (the weights copied into the store); returns its id.
    ``dataset_id``: the registered dataset to record as the one it was trained on (its lineage)."""
    settings: Settings = app.state.settings
    with unit_of_work(app.state.session_factory) as session:
        model = ModelVersion(
            name=name or f"trained-{task}",
            task=task,
            architecture=architecture,
            class_names=class_names,
            imgsz=64,
            metrics={},
            weights_path=models_service.store_weights(settings=settings, source=weights),
            training_mode="regular",
            dataset_id=dataset_id,
        )
        models_service.register(session, model=model)
        return model.id


def register_trained_model(app, trained: TrainedModel, *, name: str | None = None,
                           dataset_id: int | None = None) -> int:
    """Put ``trained`` into the app's model registry, as a succeeded training would; returns the model id."""
    return register_weights(app, task=trained.task, weights=trained.weights, class_names=trained.class_names,
                            architecture=trained.architecture, name=name, dataset_id=dataset_id)
