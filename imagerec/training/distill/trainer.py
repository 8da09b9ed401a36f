"""The trainer-subclass side of distillation: load the frozen teacher, train the terms' own parameters (adapters)
with the student, and install ``DistillCriterion`` once Ultralytics' setup has built the model and its EMA (so the
EMA copy, which is what checkpoints hold, never carries a teacher, terms or adapters).

Validation: Ultralytics' validator runs the EMA student, whose criterion is the model's own (no teacher, no
terms), and fills the loss columns it does not compute with 0. So the terms get no ``val_`` columns; their
training values are logged as ``train_kd_cls`` …, and the validation pass is judged by its scores (mAP, top-1).

Resume: the terms' own state (the feature adapters) is not part of Ultralytics' checkpoint; it is written next to
it (``weights/distill_terms.pt``) at every save and loaded back when a resumed trainer builds its terms, so the
adapters continue rather than restart (the optimizer state already holds their parameter group).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from imagerec.training.distill.criterion import DistillCriterion
from imagerec.training.distill.feature import strip_capture_hooks

TERMS_STATE = "distill_terms.pt"  # in the trainer's weights folder, next to last.pt
log = logging.getLogger(__name__)  # imagerec.training.*: the runner forwards it to the task log

TermFactory = Callable[[nn.Module, nn.Module], list[nn.Module]]  # (teacher, student) → terms


@dataclass(frozen=True)
class DistillSpec:
    teacher_weights: Path  # a registered model's weights: produced by this service, safe to unpickle
    make_terms: TermFactory


def teacher_dtype(device) -> torch.dtype:
    """Half precision on CUDA; bfloat16 on a CPU that computes it natively (AVX512-BF16/AMX: about half the
    teacher's forward time, measured 118 → 65 ms for yolov8s on 16 images at 96 px); float32 otherwise. The
    teacher only gives targets, and they go back to float32 before any loss."""
    if getattr(device, "type", str(device)) == "cuda":
        return torch.float16
    return torch.bfloat16 if _cpu_computes_bf16() else torch.float32


def _cpu_computes_bf16() -> bool:
    try:  # torch's own probe (oneDNN); a private op, so a torch without it means "no"
        return torch.backends.mkldnn.is_available() and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def load_teacher(weights: Path, device) -> nn.Module:
    """Frozen, fused, in eval mode, on the training device, in ``teacher_dtype`` (one cheap forward per batch)."""
    from ultralytics.nn.tasks import load_checkpoint

    teacher = load_checkpoint(str(weights), fuse=True)[0]
    teacher = teacher.to(device).eval().to(teacher_dtype(device))
    for parameter in teacher.parameters():
        parameter.requires_grad_(False)
    return teacher


class DistillTrainerMixin:
    """Mix in before an Ultralytics task trainer; ``distill`` is set on the class that ``trainer_class`` makes."""

    distill: DistillSpec | None = None
    distill_teacher: nn.Module | None = None
    distill_terms: nn.ModuleList | None = None

    def _prepare_distillation(self, student: nn.Module) -> None:
        if self.distill is None or self.distill_terms is not None:
            return
        self.distill_teacher = load_teacher(self.distill.teacher_weights, self.device)
        terms = self.distill.make_terms(self.distill_teacher, student)
        self.distill_terms = nn.ModuleList(terms).to(self.device)
        saved = self.wdir / TERMS_STATE
        if self.resume and saved.is_file():
            # written by save_model below: tensors only, so the safe loader suffices
            self.distill_terms.load_state_dict(torch.load(saved, map_location=self.device, weights_only=True))
            log.info("distillation terms (feature adapters) restored from the checkpoint folder")

    def build_optimizer(self, model, *args, **kwargs):
        # The optimizer is built inside _setup_train with the model already on its device: the last moment to
        # create the terms whose parameters (feature adapters) must be optimised too.
        from ultralytics.utils.torch_utils import unwrap_model

        optimizer = super().build_optimizer(model, *args, **kwargs)
        self._prepare_distillation(unwrap_model(model))
        trainable = [p for p in (self.distill_terms or nn.ModuleList()).parameters() if p.requires_grad]
        if trainable:
            optimizer.add_param_group({"params": trainable, "weight_decay": 0.0})
        return optimizer

    def _setup_train(self):
        from ultralytics.utils.torch_utils import unwrap_model

        super()._setup_train()
        if self.distill is None:
            return
        student = unwrap_model(self.model)
        self._prepare_distillation(student)
        for term in self.distill_terms:
            if hasattr(term, "attach"):  # student-side hooks go on only now that the EMA copy exists
                term.attach(student)
        student.criterion = DistillCriterion(
            student.init_criterion(), teacher=self.distill_teacher, terms=self.distill_terms,
            student_model=student, per_image_sum=self.args.task != "classify",
        )

    def label_loss_items(self, loss_items=None, prefix="train"):
        labelled = super().label_loss_items(loss_items, prefix)
        if prefix != "val" or not self.distill_terms:
            return labelled
        # Validation sums the EMA model's own criterion: a term's column there would be 0 whatever the term does.
        dropped = {f"val/{term.name}" for term in self.distill_terms}
        if isinstance(labelled, dict):
            return {key: value for key, value in labelled.items() if key not in dropped}
        return [key for key in labelled if key not in dropped]

    def save_model(self):
        if self.distill is None:
            return super().save_model()
        # An EMA rebuilt from the live student (NaN recovery) would copy its capture hooks into the checkpoint.
        strip_capture_hooks(self.ema.ema)
        saved = super().save_model()
        if any(True for _ in self.distill_terms.parameters()):
            partial = self.wdir / f"{TERMS_STATE}.partial"
            torch.save(self.distill_terms.state_dict(), partial)
            partial.replace(self.wdir / TERMS_STATE)
        return saved


def task_trainer(task: str) -> type:
    from ultralytics.models import yolo

    return {
        "detect": yolo.detect.DetectionTrainer,
        "segment": yolo.segment.SegmentationTrainer,
        "pose": yolo.pose.PoseTrainer,
        "classify": yolo.classify.ClassificationTrainer,
    }[task]


def trainer_class(task: str, mixins: tuple[type, ...], **attributes) -> type:
    """Ultralytics' trainer for ``task`` with ``mixins`` in front; ``attributes`` become class attributes (the
    trainer is instantiated by Ultralytics, so configuration travels on the class)."""
    base = task_trainer(task)
    name = "".join(m.__name__.removesuffix("TrainerMixin") for m in mixins) + base.__name__
    return type(name, (*mixins, base), dict(attributes))
