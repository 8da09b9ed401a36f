"""What a task's resume checkpoint holds, and a finished run rebuilt from one that holds every epoch.

Ultralytics resumes only a run with an epoch left to train (``resume_training`` asserts
``0 < start_epoch < epochs``): a cancel that lands in the last epoch leaves a checkpoint it refuses, although
that run is complete. ``CompletedRun`` stands for such a run: it validates the run's best weights with
Ultralytics' own validator and offers what the runner and the strategies' reports read from a trainer
(``best``, ``last``, ``epoch``, ``epochs``, ``args``, ``metrics``, ``data``, ``model``), so the task ends the way
a finished training does, with its model registered. The checkpoint is this service's own file (written by
``TrainingHooks.on_model_save``), so loading it is safe.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any


@dataclass(frozen=True)
class CheckpointFacts:
    epochs_done: int  # epochs the checkpoint's weights have been trained for (the last one may be partial)
    total_epochs: int

    @property
    def complete(self) -> bool:
        return self.epochs_done >= self.total_epochs

    def describe(self) -> str:
        if self.complete:
            return (f"the checkpoint holds all {self.total_epochs} epochs (the run was stopped in its last one): "
                    "validating its best weights and registering them, without more training")
        return (f"the checkpoint holds epoch {self.epochs_done} of {self.total_epochs} (as far as it was trained "
                f"when it stopped); training continues at epoch {self.epochs_done + 1}")


def _load(path: Path) -> dict:
    import torch

    return torch.load(path, map_location="cpu", weights_only=False)


def read_facts(path: Path) -> CheckpointFacts:
    checkpoint = _load(path)
    return CheckpointFacts(epochs_done=int(checkpoint.get("epoch", -1)) + 1,
                           total_epochs=int(checkpoint["train_args"]["epochs"]))


@dataclass
class CompletedRun:
    """A run whose every epoch is trained, as the parts of a trainer the finishing code reads."""

    best: Path
    last: Path
    epoch: int  # the last trained epoch, 0-based, as ``trainer.epoch`` after training
    epochs: int
    args: SimpleNamespace
    metrics: dict[str, Any]
    data: dict[str, Any]
    model: Any
    validator: Any = None  # what the runner reads of a trainer's validator: its ``metrics``

    @classmethod
    def validate(cls, *, checkpoint_path: Path, train_dir: Path, data: str, run_dir: Path) -> CompletedRun:
        from imagerec.evaluation.validate import validate

        weights_dir = train_dir / "weights"
        best = weights_dir / "best.pt" if (weights_dir / "best.pt").exists() else weights_dir / "last.pt"
        checkpoint = _load(checkpoint_path)
        args = SimpleNamespace(**checkpoint["train_args"])
        results, yolo = validate(best, data=data, task=args.task, imgsz=int(args.imgsz), batch=int(args.batch),
                                 device=str(args.device), project=run_dir, name="final-val", with_model=True)
        metrics = {key: value for key, value in results.results_dict.items() if key != "fitness"}
        return cls(best=best, last=weights_dir / "last.pt", epoch=int(args.epochs) - 1, epochs=int(args.epochs),
                   args=args, metrics=metrics, data={"names": dict(yolo.names)}, model=yolo.model,
                   validator=SimpleNamespace(metrics=results))
