"""A staged-freezing schedule: a request's stages (or its preset's) resolved against a model's layer groups.

Pure data, no torch: the API resolves a schedule to validate a request and show it in the 202 body; the training
child resolves the same parameters again against the model it actually loaded.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from imagerec.training.layers import LayerGroups, ScheduleError, frozen_layers, span

RANDOM_INIT_WARNING = (
    "training starts from random weights (architecture): freezing layers that have not learned anything yet is "
    "rarely useful; start from pretrained_weights or base_model_id to fine-tune"
)


@dataclass(frozen=True)
class Stage:
    number: int  # 1-based, as the task log and the metrics show it
    first_epoch: int  # 0-based, as Ultralytics' trainer.epoch counts
    epochs: int
    freeze: str | int | list[int]  # as asked
    frozen: tuple[int, ...]  # the layer indices that asks for
    lr_scale: float
    freeze_bn_stats: bool

    @property
    def last_epoch(self) -> int:
        return self.first_epoch + self.epochs - 1

    def label(self) -> str:
        if isinstance(self.freeze, str):
            return self.freeze
        if isinstance(self.freeze, int):
            return f"first {self.freeze} layers"
        return "listed layers"

    def as_dict(self) -> dict[str, Any]:
        return {
            "stage": self.number,
            "epochs": [self.first_epoch + 1, self.last_epoch + 1],  # 1-based, inclusive, like the task's epochs
            "freeze": self.freeze,
            "frozen_layers": span(self.frozen),
            "lr_scale": self.lr_scale,
            "freeze_bn_stats": self.freeze_bn_stats,
        }


@dataclass(frozen=True)
class PresetStage:
    share: float  # of the total epochs
    freeze: Callable[[LayerGroups], str | int]
    lr_scale: float = 1.0


PRESETS: dict[str, tuple[PresetStage, ...]] = {
    # Train a fresh head on fixed features first, so its random gradients do not wreck the backbone; then tune all.
    "head-then-all": (
        PresetStage(1 / 3, lambda groups: "all-but-head"),
        PresetStage(2 / 3, lambda groups: "none"),
    ),
    # Release from the top down (the later backbone blocks hold the most task-specific features), and tune
    # everything at a tenth of the rate at the end so the early, generic features move little.
    "gradual": (
        PresetStage(0.3, lambda groups: "backbone"),
        PresetStage(0.3, lambda groups: groups.backbone // 2),
        PresetStage(0.4, lambda groups: "none", lr_scale=0.1),
    ),
}


def split_epochs(total: int, shares: Sequence[float], *, preset: str) -> list[int]:
    """``total`` epochs split by ``shares`` (largest remainder), every stage getting at least one."""
    if total < len(shares):
        raise ScheduleError(f"preset '{preset}' has {len(shares)} stages and needs epochs ≥ {len(shares)} "
                            f"(got {total})")
    spare = total - len(shares)
    exact = [spare * share / sum(shares) for share in shares]
    counts = [math.floor(value) for value in exact]
    by_remainder = sorted(range(len(shares)), key=lambda i: exact[i] - counts[i], reverse=True)
    for index in by_remainder[: spare - sum(counts)]:
        counts[index] += 1
    return [count + 1 for count in counts]


def preset_stages(preset: str, total: int, groups: LayerGroups) -> list[dict[str, Any]]:
    stages = PRESETS[preset]
    epochs = split_epochs(total, [stage.share for stage in stages], preset=preset)
    return [{"epochs": count, "freeze": stage.freeze(groups), "lr_scale": stage.lr_scale, "freeze_bn_stats": True}
            for count, stage in zip(epochs, stages)]


def build_schedule(params: Mapping[str, Any], groups: LayerGroups) -> list[Stage]:
    """The stages of a freeze-strategy request (``stages`` or ``preset`` + ``epochs``), validated for ``groups``."""
    asked = params.get("stages") or preset_stages(params["preset"], params["epochs"], groups)
    schedule, first_epoch = [], 0
    for number, stage in enumerate(asked, start=1):
        try:
            frozen = frozen_layers(stage["freeze"], groups)
        except ScheduleError as error:
            raise ScheduleError(f"stage {number}: {error}") from None
        schedule.append(Stage(number=number, first_epoch=first_epoch, epochs=stage["epochs"], freeze=stage["freeze"],
                              frozen=frozen, lr_scale=stage.get("lr_scale", 1.0),
                              freeze_bn_stats=stage.get("freeze_bn_stats", True)))
        first_epoch += stage["epochs"]
    return schedule


def stage_at(schedule: Sequence[Stage], epoch: int) -> Stage:
    """The stage in force at 0-based ``epoch``: a function of the epoch alone, so a resumed run finds its stage."""
    for stage in schedule:
        if epoch <= stage.last_epoch:
            return stage
    return schedule[-1]


def summary(schedule: Sequence[Stage], groups: LayerGroups, *, preset: str | None) -> dict[str, Any]:
    """What the task report and the registered model record about the schedule."""
    return {"preset": preset, "layer_groups": groups.describe(), "stages": [stage.as_dict() for stage in schedule]}
