"""Training requests. Every mode's request extends ``TrainingRequest`` (the regular fields)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field, StrictInt, model_validator

from imagerec.fields import Flag, Id, Number, QueueName, RequestModel


class TrainingMode(StrEnum):
    regular = "regular"
    freeze_strategy = "freeze-strategy"  # staged freezing / unfreezing in one run
    incremental = "incremental"  # new classes or data on top of a registered model, without forgetting
    distillation = "distillation"  # a student trained to follow a registered teacher model


Optimizer = Literal["auto", "SGD", "Adam", "AdamW", "NAdam", "RAdam", "RMSProp"]
Architecture = Literal["yolov8n", "yolov8s", "yolov8m", "yolov8l", "yolov8x"]


class TrainingFields(RequestModel):
    """The fields every training mode takes: the dataset and the usual Ultralytics hyper-parameters."""


    dataset_id: Id = Field(description="A registered dataset")
    epochs: StrictInt = Field(50, ge=1, le=10_000)
    imgsz: StrictInt = Field(640, ge=32, le=4096, multiple_of=32)
    batch: StrictInt = Field(16, ge=1, le=1024)
    device: str = Field("auto", pattern=r"^(auto|cpu|\d{1,2}(,\d{1,2}){0,15})$",
                        description='"cpu", "0", "0,1" or "auto"')
    optimizer: Optimizer = Field(
        "auto", description="'auto' lets Ultralytics pick the optimizer and, for short runs, its learning rate "
        "(lr0 is then ignored, as the task log warns); name one to have lr0 used as given"
    )
    lr0: Number = Field(0.01, gt=0, le=1.0)
    patience: StrictInt = Field(100, ge=0, le=10_000, description="Epochs without improvement before stopping early")
    seed: StrictInt = Field(0, ge=0, le=2**31 - 1)
    workers: StrictInt | None = Field(None, ge=0, le=32, description="Dataloader workers; default from settings")
    name: str | None = Field(None, min_length=1, max_length=200)
    queue: QueueName | None = None


class TrainingRequest(TrainingFields):
    """Regular training: one starting point (exactly one of ``architecture``, ``pretrained_weights``,
    ``base_model_id``) and the usual Ultralytics hyper-parameters."""

    architecture: Architecture | None = Field(
        None, description="Random init from the architecture YAML that fits the dataset's task"
    )
    pretrained_weights: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,120}\.pt$",
        description="A file name in the server's pretrained-models folder, e.g. yolov8n.pt",
    )
    base_model_id: Id | None = Field(None, description="Fine-tune a registered model")

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


class FreezeStage(RequestModel):

    epochs: StrictInt = Field(ge=1, le=10_000, description="Epochs this stage lasts")
    freeze: FreezeGroup | LayerIndex | list[LayerIndex] = Field(
        description='"backbone", "backbone+neck", "all-but-head", "none", N (the first N layers) or a list of '
        "layer indices, numbered as in the model's YAML (backbone first, then head)"
    )
    lr_scale: Number = Field(1.0, gt=0, le=100, description="Multiplies the learning rate while this stage runs")
    freeze_bn_stats: Flag = Field(True, description="Hold the running statistics of frozen BatchNorm layers")


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


# -- distillation -----------------------------------------------------------------------------------------------
# Defaults: tuned on the synthetic detection benchmark (docs/benchmarks.md, "Distillation"); weight 0 switches a
# term off (it then logs 0 and costs nothing).


class ResponseLoss(RequestModel):

    weight: Number = Field(1.0, ge=0, le=100)
    temperature: Number = Field(1.0, gt=0, le=20, description="Softening of both outputs; the term is scaled by T²")


class FeatureLoss(RequestModel):

    weight: Number = Field(1.0, ge=0, le=100)
    method: Literal["cwd", "mse"] = Field("cwd", description="Channel-wise distillation, or plain MSE")
    temperature: Number = Field(1.0, gt=0, le=20, description="CWD's spatial-softmax temperature (unused by mse)")


class ConsistencyLoss(RequestModel):

    weight: Number = Field(0.0, ge=0, le=100, description="Flip consistency; costs one more student pass per batch")


class DistillationLosses(RequestModel):

    cls: ResponseLoss = Field(ResponseLoss(), description="Class scores follow the teacher's softened scores")
    box: ResponseLoss = Field(ResponseLoss(), description="Box (DFL) distributions follow the teacher's, "
                              "where the teacher is confident; detection family only")
    feature: FeatureLoss = Field(FeatureLoss(), description="Neck features (classify: the head's pre-pool map) "
                                 "follow the teacher's, through learned 1×1 adapters when widths differ")
    consistency: ConsistencyLoss = Field(ConsistencyLoss(), description="Predictions on the flipped image, "
                                         "flipped back, follow those on the original (CSD)")


class DistillationRequest(TrainingRequest):
    """Train a student (its starting point as for regular training) to follow a registered teacher model of the
    same task and classes; the teacher may be larger. The student's own loss on the labels stays in full."""

    teacher_model_id: Id = Field( description="A registered model: the frozen teacher")
    losses: DistillationLosses = DistillationLosses()

    @model_validator(mode="after")
    def _a_term_is_on(self) -> DistillationRequest:
        if all(getattr(self.losses, term).weight == 0 for term in DistillationLosses.model_fields):
            raise ValueError("at least one distillation term must have weight > 0 (cls, box, feature or "
                             "consistency); with every weight 0 this is regular training (/api/training/regular)")
        return self


# -- incremental ------------------------------------------------------------------------------------------------


class ReplaySettings(RequestModel):

    enabled: Flag = True
    source_dataset_ids: list[Id] | None = Field(
        None, max_length=100,
        description="Datasets to replay old images from; default: the datasets in the base model's lineage",
    )
    max_images: StrictInt | None = Field(None, ge=1, le=1_000_000, description="Replay set size (wins over ratio)")
    ratio: Number | None = Field(
        None, gt=0, le=100, description="Replay set size relative to the new dataset's train images; "
        "default 1.0 when neither this nor max_images is given"
    )
    min_per_class: StrictInt = Field(5, ge=0, le=100_000,
                                     description="Old images guaranteed per old class, if available")
    strategy: Literal["class_balanced", "random"] = "class_balanced"


class PseudoLabelSettings(RequestModel):

    enabled: Flag = True
    conf: Number = Field(0.5, gt=0, le=1, description="The base model's confidence needed for a pseudo-label")
    iou: Number = Field(0.5, gt=0, le=1, description="Overlap with a human label (IoU) that makes it a duplicate")


class OldClassDistillation(RequestModel):

    enabled: Flag = True
    weight: Number = Field(
        0.25, ge=0, le=100, description="Weight of the class-score and box-distribution terms (0.25: retention "
        "and new-class accuracy both ≥ 0.9 of their references on the benchmark; 1.0 slowed the new classes)"
    )
    temperature: Number = Field(1.0, gt=0, le=20)


class IncrementalRequest(TrainingFields):
    """Add classes or data to a registered model without forgetting the old classes.

    The new model starts from all of ``base_model_id``'s weights with its class outputs widened to the merged
    classes (old names keep their ids, new names are appended); it trains on the new dataset plus a replay set of
    old images, with the base model's pseudo-labels for old-class objects the new images leave unlabelled, and the
    frozen base model's responses on the old classes as a distillation target.
    """

    base_model_id: Id = Field(description="The registered model to extend")
    optimizer: Optimizer = Field("AdamW", description="Named, so that the lower lr0 is used as given")
    lr0: Number = Field(0.002, gt=0, le=1.0, description="Lower than a fresh training: the model is already trained")
    freeze: StrictInt | None = Field(None, ge=0, le=100,
                                     description="Freeze the first N layers (e.g. 10: the backbone)")
    replay: ReplaySettings = ReplaySettings()
    pseudo_labels: PseudoLabelSettings = PseudoLabelSettings()
    distill_old: OldClassDistillation = OldClassDistillation()
