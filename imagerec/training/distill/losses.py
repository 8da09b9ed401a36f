"""The distillation terms a request's ``losses`` asks for, built for the task at hand.

What each task gets (every term switches off with weight 0 and then logs 0 without computing):

==========  ========================  ======================  ==========================  ====================
task        kd_cls                    kd_box                  kd_feature                  consistency
==========  ========================  ======================  ==========================  ====================
detect      sigmoid scores, binary    DFL distributions,      neck maps the Detect head   flipped batch,
            KL × T²                   KL × T², teacher-       reads (cwd | mse),          scores + DFL boxes
                                      confidence weighted     1×1 adapters
segment     as detect                 as detect               as detect                   as detect
pose        as detect                 as detect               as detect                   as detect
classify    softmax KL × T²           — (no boxes)            map the Classify head pools flipped batch,
                                                              (cwd | mse)                 softmax KL
==========  ========================  ======================  ==========================  ====================

Mask coefficients (segment) and keypoints (pose) are not distilled: the model's own loss fits them.
The term order is fixed: the feature term reads the student's captured map before the consistency term's
extra student pass overwrites it.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from torch import nn

from imagerec.training.distill.consistency import FlipConsistency
from imagerec.training.distill.feature import ClassifyFeatureDistillation, FeatureDistillation, detect_widths
from imagerec.training.distill.terms import BoxDistillation, ScoreDistillation
from imagerec.training.schemas import DistillationLosses

# One source for the defaults: the request schema (tuned on the benchmark, docs/benchmarks.md "Distillation").
DEFAULT_LOSSES: dict[str, dict[str, Any]] = DistillationLosses().model_dump()


def _detect_terms(losses: dict, teacher: nn.Module, student: nn.Module) -> list[nn.Module]:
    reg_max = student.model[-1].reg_max
    if teacher.model[-1].reg_max != reg_max:
        raise ValueError(f"teacher reg_max {teacher.model[-1].reg_max} differs from the student's {reg_max}")
    return [
        ScoreDistillation(**losses["cls"], classify=False),
        BoxDistillation(**losses["box"], reg_max=reg_max),
        FeatureDistillation(**losses["feature"], student_widths=detect_widths(student),
                            teacher_widths=detect_widths(teacher)),
        FlipConsistency(**losses["consistency"], classify=False, reg_max=reg_max),
    ]


def _classify_terms(losses: dict, teacher: nn.Module, student: nn.Module) -> list[nn.Module]:
    return [
        ScoreDistillation(**losses["cls"], classify=True),
        ClassifyFeatureDistillation(**losses["feature"], teacher=teacher, student=student),
        FlipConsistency(**losses["consistency"], classify=True),
    ]


def build_terms(task: str, losses: dict, teacher: nn.Module, student: nn.Module) -> list[nn.Module]:
    merged = {key: DEFAULT_LOSSES[key] | dict(losses.get(key) or {}) for key in DEFAULT_LOSSES}
    make = _classify_terms if task == "classify" else _detect_terms
    return make(merged, teacher, student)


def term_factory(task: str, losses: dict):
    """The ``DistillSpec.make_terms`` for a task and a request's losses (a partial: no closure state)."""
    return partial(build_terms, task, losses)
