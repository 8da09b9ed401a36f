"""Teachers for the distillation tests: yolov8s (wider than the yolov8n students, so adapters are exercised)
trained for one epoch on the synthetic data, once per session. Their quality does not matter here; that they are
real Ultralytics checkpoints with the synthetic class names does."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from imagerec.config import Settings
from imagerec.datasets.synthetic import write_dataset
from imagerec.db import unit_of_work
from imagerec.model_versions import service as models_service
from imagerec.model_versions.models import ModelVersion
from imagerec.training import ultralytics_env
from imagerec.training.starting_point import architecture_yaml

TINY = dict(imgsz=64, batch=8, device="cpu", workers=0, plots=False, verbose=False, val=False, mosaic=0.0,
            exist_ok=True, seed=0)


@dataclass(frozen=True)
class Teacher:
    task: str
    weights: Path
    data: str  # what train(data=…) takes: a YAML for the detection family, the folder for classify
    class_names: list[str]


class Teachers:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._made: dict[str, Teacher] = {}

    def __call__(self, task: str) -> Teacher:
        if task not in self._made:
            self._made[task] = self._train(task)
        return self._made[task]

    def _train(self, task: str) -> Teacher:
        ultralytics_env.configure(Settings(data_dir=self.root / "ultralytics-home"))
        from ultralytics import YOLO

        folder = write_dataset(task, self.root / f"data-{task}", train=16, val=8, imgsz=64, seed=3)
        data = str(folder)
        if task != "classify":
            content = yaml.safe_load((folder / "data.yaml").read_text()) | {"path": str(folder)}
            (folder / "train.yaml").write_text(yaml.safe_dump(content))
            data = str(folder / "train.yaml")
        yolo = YOLO(architecture_yaml("yolov8s", task))
        yolo.train(data=data, epochs=1, project=str(self.root / "runs"), name=task, **TINY)
        names = yolo.trainer.data["names"]  # classify sorts its folder names: take the model's own order
        return Teacher(task, Path(yolo.trainer.last), data, [names[i] for i in sorted(names)])


@pytest.fixture(scope="session")
def teachers(tmp_path_factory) -> Teachers:
    return Teachers(tmp_path_factory.mktemp("distill-teachers"))


def register_model(app, *, task: str, weights: Path, class_names: list[str], architecture: str = "yolov8s") -> int:
    """A registry row as a finished training leaves it; returns the model id."""
    settings: Settings = app.state.settings
    with unit_of_work(app.state.session_factory) as session:
        model = ModelVersion(
            name=f"teacher-{task}", task=task, architecture=architecture, class_names=class_names, imgsz=64,
            metrics={}, weights_path=models_service.store_weights(settings=settings, source=weights),
            training_mode="regular",
        )
        models_service.register(session, model=model)
        return model.id
