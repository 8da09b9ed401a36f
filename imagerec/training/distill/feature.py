"""Feature distillation: the student's intermediate features follow the teacher's, through learned adapters.

Detection family (detect, segment, pose): the neck maps the Detect head receives, one per level (``feats`` of
the head's training output, present for both models). Classify: the map the Classify head pools (the output of
its 1×1 conv, B × 1280 × h × w for every yolov8 size), captured with a forward hook — the logits alone carry
no spatial information, and this map is what the pooled feature is the mean of.

Two methods:
- ``cwd``, channel-wise distillation (Shu et al., ICCV 2021): each channel becomes a distribution over spatial
  positions (softmax with temperature T), the student's follows the teacher's by KL, × T², averaged over
  channels and images. It matches *where* each channel fires, not its scale, so teachers and students with
  differently scaled activations need no normalisation.
- ``mse``: mean squared error of the (adapted) student map against the teacher's.

When the widths differ (yolov8n 64/128/256 vs yolov8s 128/256/512), a 1×1 convolution per level maps the
student to the teacher's width. Adapters are parameters of this term: the trainer optimises them with the
student and never saves them into the student's checkpoint.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from imagerec.training.distill.criterion import DistillInputs


def channel_wise_kl(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """CWD for one level: (B, C, H, W) pairs of equal shape → scalar, mean over images and channels."""
    batch, channels = student.shape[:2]
    log_s = F.log_softmax(student.reshape(batch, channels, -1) / temperature, dim=-1)
    log_t = F.log_softmax(teacher.reshape(batch, channels, -1) / temperature, dim=-1)
    kl = (log_t.exp() * (log_t - log_s)).sum(dim=-1)  # (B, C)
    return kl.mean() * temperature**2


def _adapter(student_width: int, teacher_width: int) -> nn.Module:
    if student_width == teacher_width:
        return nn.Identity()
    return nn.Conv2d(student_width, teacher_width, kernel_size=1)


def detect_widths(model: nn.Module) -> list[int]:
    """Input widths of the Detect head's levels (its box branch's first conv sees each neck map)."""
    head = model.model[-1]
    return [branch[0].conv.in_channels for branch in head.cv2]


class _Capture:
    """Forward hook that keeps the module's latest output. Registered by the trainer after the EMA copy exists,
    and removed from the EMA before every save, so no checkpoint ever references it."""

    def __init__(self) -> None:
        self.output: torch.Tensor | None = None

    def __call__(self, module: nn.Module, args: Any, output: torch.Tensor) -> None:
        self.output = output


class FeatureDistillation(nn.Module):
    name = "kd_feature"

    def __init__(self, *, weight: float, method: str, temperature: float, student_widths: list[int],
                 teacher_widths: list[int]) -> None:
        super().__init__()
        if len(student_widths) != len(teacher_widths):
            raise ValueError(f"the student's head reads {len(student_widths)} feature levels, the teacher's "
                             f"{len(teacher_widths)}: feature distillation needs the same levels")
        self.weight, self.method, self.temperature = weight, method, temperature
        # No adapters when the term is off: nothing to optimise, nothing to save for resume.
        pairs = zip(student_widths, teacher_widths) if weight > 0 else []
        self.adapters = nn.ModuleList(_adapter(s, t) for s, t in pairs)

    def level_pairs(self, inputs: DistillInputs) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return list(zip(inputs.student["feats"], inputs.teacher["feats"]))

    def forward(self, inputs: DistillInputs) -> torch.Tensor:
        if self.weight == 0:
            return inputs.batch["img"].new_zeros(())
        losses = []
        for adapter, (student, teacher) in zip(self.adapters, self.level_pairs(inputs)):
            student = adapter(student.float())
            if self.method == "cwd":
                losses.append(channel_wise_kl(student, teacher, self.temperature))
            else:
                losses.append(F.mse_loss(student, teacher))
        return self.weight * torch.stack(losses).mean()


class ClassifyFeatureDistillation(FeatureDistillation):
    """Classify: the Classify head's pre-pool map, captured by hooks on ``head.conv`` of both models."""

    def __init__(self, *, teacher: nn.Module, student: nn.Module, **kwargs) -> None:
        widths = lambda model: [model.model[-1].conv.conv.out_channels]  # noqa: E731
        super().__init__(student_widths=widths(student), teacher_widths=widths(teacher), **kwargs)
        self._teacher_capture, self._student_capture = _Capture(), _Capture()
        self._handles = []
        if self.weight > 0:  # the teacher is never saved: its hook can go on now
            self._handles.append(teacher.model[-1].conv.register_forward_hook(self._teacher_capture))

    def attach(self, student: nn.Module) -> None:
        """Called once the trainer's EMA copy of the student exists (so the copy carries no hook)."""
        if self.weight > 0:
            self._handles.append(student.model[-1].conv.register_forward_hook(self._student_capture))

    def level_pairs(self, inputs: DistillInputs) -> list[tuple[torch.Tensor, torch.Tensor]]:
        # The teacher's map was made under inference mode: a clone outside it can take part in autograd.
        teacher = self._teacher_capture.output.clone().float()
        return [(self._student_capture.output, teacher)]


def strip_capture_hooks(model: nn.Module) -> None:
    """Remove every ``_Capture`` hook from ``model`` (an EMA that was deep-copied from a hooked student)."""
    for module in model.modules():
        for key, hook in list(module._forward_hooks.items()):
            if isinstance(hook, _Capture):
                del module._forward_hooks[key]
