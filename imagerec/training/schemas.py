"""Training requests. Every mode's request extends ``TrainingRequest`` (the regular fields)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, model_validator


class TrainingMode(StrEnum):
    regular = "regular"
    freeze_strategy = "freeze-strategy"  # staged freezing / unfreezing in one run


Optimizer = Literal["auto", "SGD", "Adam", "AdamW", "NAdam", "RAdam", "RMSProp"]
Architecture = Literal["yolov8n", "yolov8s", "yolov8m", "yolov8l", "yolov8x"]


class TrainingRequest(BaseModel):
    """Regular training: one starting point (exactly one of ``architecture``, ``pretrained_weights``,
    ``base_model_id``) and the usual Ultralytics hyper-parameters."""

    model_config = ConfigDict(extra="forbid")

    dataset_id: int = Field(ge=1, description="A registered dataset")
    architecture: Architecture | None = Field(
        None, description="Random init from the architecture YAML that fits the dataset's task"
    )
    pretrained_weights: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,120}\.pt$",
        description="A file name in the server's pretrained-models folder, e.g. yolov8n.pt",
    )
    base_model_id: int | None = Field(None, ge=1, description="Fine-tune a registered model")
    epochs: int = Field(50, ge=1, le=10_000)
    imgsz: int = Field(640, ge=32, le=4096, multiple_of=32)
    batch: int = Field(16, ge=1, le=1024)
    device: str = Field("auto", pattern=r"^(auto|cpu|\d{1,2}(,\d{1,2}){0,15})$", description='"cpu", "0", "0,1" or "auto"')
    optimizer: Optimizer = Field(
        "auto", description="'auto' lets Ultralytics pick the optimizer and, for short runs, its learning rate "
        "(lr0 is then ignored, as the task log warns); name one to have lr0 used as given"
    )
    lr0: float = Field(0.01, gt=0, le=1.0)
    patience: int = Field(100, ge=0, le=10_000, description="Epochs without improvement before stopping early")
    seed: int = Field(0, ge=0, le=2**31 - 1)
    workers: int | None = Field(None, ge=0, le=32, description="Dataloader workers; default from settings")
    name: str | None = Field(None, min_length=1, max_length=200)

    @model_validator(mode="after")
    def _one_starting_point(self) -> TrainingRequest:
        given = [f for f in ("architecture", "pretrained_weights", "base_model_id") if getattr(self, f) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one starting point: architecture, pretrained_weights or base_model_id"
                + (f" (got {', '.join(given)})" if given else "")
            )
        return self


# -- staged freezing ---------------------------------------------------------------------------------------------

FreezeGroup = Literal["backbone", "backbone+neck", "all-but-head", "none"]
LayerIndex = Annotated[StrictInt, Field(ge=0)]  # strict: JSON true must not pass as layer 1


class FreezePreset(StrEnum):
    head_then_all = "head-then-all"  # the head alone for a third of the epochs, then everything
    gradual = "gradual"  # backbone frozen, then its later blocks released, then everything at 0.1 × lr


class FreezeStage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    epochs: int = Field(ge=1, le=10_000, description="Epochs this stage lasts")
    freeze: FreezeGroup | LayerIndex | list[LayerIndex] = Field(
        description='"backbone", "backbone+neck", "all-but-head", "none", N (the first N layers) or a list of '
        "layer indices, numbered as in the model's YAML (backbone first, then head)"
    )
    lr_scale: float = Field(1.0, gt=0, le=100, description="Multiplies the learning rate while this stage runs")
    freeze_bn_stats: bool = Field(True, description="Hold the running statistics of frozen BatchNorm layers")


class FreezeStrategyRequest(TrainingRequest):
    """Regular fields plus exactly one of ``stages`` and ``preset``.

    With ``stages``, ``epochs`` may be left out: it is the stages' total, and if given must equal it. With
    ``preset``, ``epochs`` is the total the preset splits (every stage gets at least one epoch). ``patience``
    still watches the whole run: a run that stops early never reaches its later stages.
    """

    stages: list[FreezeStage] | None = Field(None, min_length=1, max_length=100)
    preset: FreezePreset | None = None

    @model_validator(mode="after")
    def _stages_or_preset(self) -> FreezeStrategyRequest:
        if (self.stages is None) == (self.preset is None):
            raise ValueError("give either 'stages' or 'preset'" + (", not both" if self.stages else ""))
        if self.stages is not None:
            total = sum(stage.epochs for stage in self.stages)
            if "epochs" in self.model_fields_set and self.epochs != total:
                raise ValueError(
                    f"epochs ({self.epochs}) does not match the stages' total ({total}): leave 'epochs' out "
                    "or make it the sum of the stages' epochs"
                )
            if total > 10_000:
                raise ValueError(f"the stages add up to {total} epochs; at most 10000")
            self.epochs = total  # what the runner trains for: one continuous run over every stage
        return self
