"""Old-class distillation leaves the anchors on new-class objects to the model's own loss."""

from __future__ import annotations

import torch

from imagerec.training.distill.criterion import DistillInputs
from imagerec.training.distill.terms import BoxDistillation, ScoreDistillation, anchor_centres, spared_anchors

REG_MAX = 16


def _outputs(scores: torch.Tensor, boxes: torch.Tensor, feats: list[torch.Tensor]) -> dict:
    return {"scores": scores, "boxes": boxes, "feats": feats}


def _inputs(student_scores: torch.Tensor, teacher_scores: torch.Tensor) -> DistillInputs:
    feats = [torch.zeros(2, 1, 8, 8), torch.zeros(2, 1, 4, 4), torch.zeros(2, 1, 2, 2)]  # strides 8, 16, 32 at 64 px
    boxes = torch.zeros(2, 4 * REG_MAX, 84)
    batch = {
        "img": torch.zeros(2, 3, 64, 64),
        "cls": torch.tensor([[3.0], [0.0]]),  # image 0: a new-class (3) object; image 1: an old-class (0) one
        "bboxes": torch.tensor([[0.25, 0.25, 0.5, 0.5], [0.75, 0.75, 0.5, 0.5]]),  # normalised cx, cy, w, h
        "batch_idx": torch.tensor([0.0, 1.0]),
    }
    return DistillInputs(student=_outputs(student_scores, boxes, feats), teacher=_outputs(teacher_scores, boxes, feats),
                         batch=batch, student_model=None)


def test_anchor_centres_follow_the_levels() -> None:
    centres = anchor_centres([torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 4, 4)], (64, 64))
    assert centres.shape == (80, 2)
    assert centres[0].tolist() == [4.0, 4.0] and centres[64].tolist() == [8.0, 8.0]


def test_only_anchors_inside_new_class_boxes_are_spared() -> None:
    spared = spared_anchors(_inputs(torch.zeros(2, 4, 84), torch.zeros(2, 3, 84)), first_class=3)
    centres = anchor_centres([torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 2, 2)], (64, 64))
    top_left = (centres[:, 0] < 32) & (centres[:, 1] < 32)
    assert torch.equal(spared[0], top_left) and not spared[1].any()  # the old-class box of image 1 is not spared


def test_a_disagreement_on_a_new_class_object_costs_nothing() -> None:
    teacher = torch.full((2, 3, 84), -4.0)
    spared = spared_anchors(_inputs(torch.zeros(2, 4, 84), teacher), first_class=3)
    on_new_object = torch.full((2, 4, 84), -4.0)
    on_new_object[0, 0, spared[0]] = 3.0  # the student says "square" where the diamond is labelled
    elsewhere = torch.full((2, 4, 84), -4.0)
    elsewhere[1, 0, :5] = 3.0
    term = ScoreDistillation(weight=1.0, temperature=1.0, classify=False, spare_from_class=3)
    assert term(_inputs(on_new_object, teacher)).item() == 0.0
    assert term(_inputs(elsewhere, teacher)).item() > 0.1
    unspared = ScoreDistillation(weight=1.0, temperature=1.0, classify=False)
    assert unspared(_inputs(on_new_object, teacher)).item() > 0.1


def test_box_term_is_zero_when_only_spared_anchors_differ() -> None:
    inputs = _inputs(torch.zeros(2, 4, 84), torch.full((2, 3, 84), 2.0))
    spared = spared_anchors(inputs, first_class=3)
    inputs.student["boxes"] = torch.zeros(2, 4 * REG_MAX, 84)
    inputs.student["boxes"][0][:, spared[0]] = torch.randn(4 * REG_MAX, int(spared[0].sum()))
    term = BoxDistillation(weight=1.0, temperature=1.0, reg_max=REG_MAX, spare_from_class=3)
    assert abs(term(inputs).item()) < 1e-6
    assert BoxDistillation(weight=1.0, temperature=1.0, reg_max=REG_MAX)(inputs).item() > 1e-3
