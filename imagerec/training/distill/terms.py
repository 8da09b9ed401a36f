"""Response distillation terms: class scores and box distributions follow the teacher's.

Each term is an ``nn.Module`` with a ``name`` (its loss column) that maps ``DistillInputs`` to a weighted scalar.
The teacher's classes are the student's first classes: equal for plain distillation, the old classes when an
incremental student has been widened; the terms compare those channels only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from imagerec.training.distill.criterion import DistillInputs


def _zero(inputs: DistillInputs) -> torch.Tensor:
    return inputs.batch["img"].new_zeros(())


def _kept(inputs: DistillInputs, spare_from_class: int | None) -> torch.Tensor | float:
    if spare_from_class is None:
        return 1.0
    return (~spared_anchors(inputs, spare_from_class)).float()


def teacher_confidence(teacher: dict) -> torch.Tensor:
    """Per anchor, the teacher's highest class probability: (B, A)."""
    return teacher["scores"].sigmoid().amax(dim=1)


def anchor_centres(feats: list[torch.Tensor], image_shape: tuple[int, int]) -> torch.Tensor:
    """(A, 2) pixel centres of every anchor, level by level in the head's order (as ``make_anchors``)."""
    centres = []
    for feat in feats:
        height, width = feat.shape[2:]
        stride_y, stride_x = image_shape[0] / height, image_shape[1] / width
        ys = (torch.arange(height, device=feat.device, dtype=torch.float32) + 0.5) * stride_y
        xs = (torch.arange(width, device=feat.device, dtype=torch.float32) + 0.5) * stride_x
        grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
        centres.append(torch.stack((grid_x.reshape(-1), grid_y.reshape(-1)), dim=1))
    return torch.cat(centres)


def spared_anchors(inputs: DistillInputs, first_class: int) -> torch.Tensor:
    """(B, A) True where an anchor lies inside a labelled box of a class ≥ ``first_class`` of its image.

    An incremental student learns its new classes there: a teacher that never saw them may call a diamond a
    square with some confidence, and copying that answer would fight the label the model's own loss teaches."""
    batch = inputs.batch
    images = batch["img"]
    centres = anchor_centres(inputs.student["feats"], images.shape[2:])
    spared = torch.zeros(images.shape[0], centres.shape[0], device=images.device)
    new = batch["cls"].view(-1) >= first_class
    if not bool(new.any()):
        return spared.bool()
    height, width = images.shape[2:]
    cx, cy, w, h = (batch["bboxes"][new].to(images.device) * images.new_tensor([width, height, width, height])).T
    x, y = centres[:, 0:1].T, centres[:, 1:2].T  # (1, A)
    inside = ((x > (cx - w / 2)[:, None]) & (x < (cx + w / 2)[:, None])
              & (y > (cy - h / 2)[:, None]) & (y < (cy + h / 2)[:, None]))  # (boxes, A)
    spared.index_add_(0, batch["batch_idx"].view(-1)[new].long().to(images.device), inside.float())
    return spared > 0


def binary_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Elementwise KL between the Bernoulli distributions of temperature-softened sigmoid scores (zero when equal,
    unlike BCE against soft targets, so the logged value shows how far apart they are)."""
    s, t = student_logits / temperature, teacher_logits / temperature
    p_t = t.sigmoid()
    return p_t * (F.logsigmoid(t) - F.logsigmoid(s)) + (1 - p_t) * (F.logsigmoid(-t) - F.logsigmoid(-s))


class ScoreDistillation(nn.Module):
    """Detection family: binary KL of every anchor's class scores, normalised by the teacher's total confidence
    (as Ultralytics normalises its class loss by the target-score sum). Classify: KL of softmax logits. Both × T²
    so the gradient scale does not shrink with the temperature (Hinton et al.)."""

    name = "kd_cls"

    def __init__(self, *, weight: float, temperature: float, classify: bool,
                 spare_from_class: int | None = None) -> None:
        super().__init__()
        self.weight, self.temperature, self.classify = weight, temperature, classify
        self.spare_from_class = spare_from_class  # detection: anchors on objects of these classes are not distilled

    def forward(self, inputs: DistillInputs) -> torch.Tensor:
        if self.weight == 0:
            return _zero(inputs)
        scale = self.weight * self.temperature**2
        if self.classify:
            teacher = inputs.teacher
            student = inputs.student[:, : teacher.shape[1]]
            return scale * F.kl_div(F.log_softmax(student / self.temperature, dim=1),
                                    F.log_softmax(teacher / self.temperature, dim=1),
                                    log_target=True, reduction="batchmean")
        teacher = inputs.teacher["scores"]
        student = inputs.student["scores"][:, : teacher.shape[1]]
        keep = _kept(inputs, self.spare_from_class)
        normaliser = (teacher_confidence(inputs.teacher) * keep).sum().clamp(min=1.0)
        per_anchor = binary_kl(student, teacher, self.temperature).sum(dim=1)  # (B, A)
        return scale * (per_anchor * keep).sum() / normaliser


class BoxDistillation(nn.Module):
    """Localisation distillation (LD, Zheng et al. 2022): the student's DFL distribution of each box side follows
    the teacher's softened one, weighted per anchor by the teacher's confidence, so it acts where the teacher sees
    an object rather than on background."""

    name = "kd_box"

    def __init__(self, *, weight: float, temperature: float, reg_max: int, spare_from_class: int | None = None) -> None:
        super().__init__()
        self.weight, self.temperature, self.reg_max = weight, temperature, reg_max
        self.spare_from_class = spare_from_class  # anchors on objects of these classes are not distilled

    def forward(self, inputs: DistillInputs) -> torch.Tensor:
        if self.weight == 0:
            return _zero(inputs)
        batch, _, anchors = inputs.student["boxes"].shape
        shape = (batch, 4, self.reg_max, anchors)
        log_s = F.log_softmax(inputs.student["boxes"].view(shape) / self.temperature, dim=2)
        log_t = F.log_softmax(inputs.teacher["boxes"].view(shape) / self.temperature, dim=2)
        per_anchor = (log_t.exp() * (log_t - log_s)).sum(dim=2).sum(dim=1)  # (B, A): KL summed over the 4 sides
        confidence = teacher_confidence(inputs.teacher) * _kept(inputs, self.spare_from_class)
        loss = (per_anchor * confidence).sum() / confidence.sum().clamp(min=1e-6)
        return self.weight * self.temperature**2 * loss
