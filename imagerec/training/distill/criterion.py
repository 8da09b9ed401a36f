"""The model's own criterion plus distillation terms, installed on the training model after the trainer's setup.

Ultralytics calls ``model.loss(batch)`` → ``model.criterion(preds, batch)`` and sums the returned loss vector; the
loss-items dict names every column of the progress and metrics. So the extra terms become extra columns
(``kd_cls``, ``kd_box`` …) and extra summands, with no change to the training loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn


def head_outputs(preds: Any) -> Any:
    """Raw head outputs in training form: a dict (boxes, scores, feats …) for the detection family, logits for
    classify. Eval-mode models return ``(inference, raw)``; end-to-end heads nest the one-to-many branch."""
    if isinstance(preds, (tuple, list)):
        preds = preds[1]
    if isinstance(preds, dict) and "one2many" in preds:
        preds = preds["one2many"]
    return preds


@dataclass
class DistillInputs:
    student: Any  # head_outputs of the student on the batch
    teacher: Any  # head_outputs of the frozen teacher on the same images (no graph)
    batch: dict[str, Any]
    student_model: nn.Module  # for terms that need another student pass (consistency)


class DistillCriterion:
    def __init__(self, base: Any, *, teacher: nn.Module, terms: nn.ModuleList, student_model: nn.Module,
                 per_image_sum: bool) -> None:
        self.base = base
        self.teacher = teacher
        self.terms = terms
        self.student_model = student_model
        self.per_image_sum = per_image_sum  # detection losses come back × batch size; classify's as a mean

    def teacher_outputs(self, images: torch.Tensor) -> Any:
        dtype = next(self.teacher.parameters()).dtype
        with torch.inference_mode():
            raw = head_outputs(self.teacher(images.to(dtype)))
        # Inference tensors cannot be saved for backward: clone them out of inference mode, in float.
        return _clone_float(raw)

    def __call__(self, preds: Any, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        loss, items = self.base(preds, batch)
        inputs = DistillInputs(student=head_outputs(preds), teacher=self.teacher_outputs(batch["img"]),
                               batch=batch, student_model=self.student_model)
        values = [term(inputs) for term in self.terms]
        if not values:
            return loss, items
        extra = torch.stack(values)
        # Logged per image, like the model's own items (Ultralytics detaches those before its × batch size).
        items = {**items, **{term.name: value.detach() for term, value in zip(self.terms, extra)}}
        if self.per_image_sum:
            extra = extra * batch["img"].shape[0]
        return torch.cat([loss.reshape(-1), extra]), items

    def update(self) -> None:
        """The trainer calls ``criterion.update()`` at epoch end when the criterion has one (schedules of v26
        losses); pass it on."""
        if hasattr(self.base, "update"):
            self.base.update()


def _clone_float(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.clone().float() if value.is_floating_point() else value.clone()
    if isinstance(value, dict):
        return {key: _clone_float(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_clone_float(item) for item in value)
    return value
