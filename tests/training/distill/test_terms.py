"""The distillation terms on real (random-init) YOLOv8 models: each is non-zero when on and exactly zero (and
not computed) at weight 0; gradients reach the student and the adapters, never the teacher; the flip used by
the consistency term lines anchors up exactly."""

from __future__ import annotations

import pytest
import torch

from imagerec.training.distill.consistency import FlipConsistency, flip_back, flip_back_boxes
from imagerec.training.distill.criterion import DistillInputs, _clone_float, head_outputs
from imagerec.training.distill.feature import channel_wise_kl
from imagerec.training.distill.losses import build_terms

ALL_ON = {"cls": {"weight": 1.0}, "box": {"weight": 1.0}, "feature": {"weight": 1.0},
          "consistency": {"weight": 1.0}}
ALL_OFF = {key: {"weight": 0.0} for key in ALL_ON}
EXPECTED = {"detect": ["kd_cls", "kd_box", "kd_feature", "consistency"],
            "classify": ["kd_cls", "kd_feature", "consistency"]}


def _models(task: str):
    from ultralytics.nn.tasks import ClassificationModel, DetectionModel, PoseModel, SegmentationModel

    kind, suffix, extra = {
        "detect": (DetectionModel, "", {}), "segment": (SegmentationModel, "-seg", {}),
        "pose": (PoseModel, "-pose", {"data_kpt_shape": (3, 3)}), "classify": (ClassificationModel, "-cls", {}),
    }[task]
    torch.manual_seed(0)
    student = kind(f"yolov8n{suffix}.yaml", nc=3, verbose=False, **extra).train()
    teacher = kind(f"yolov8s{suffix}.yaml", nc=3, verbose=False, **extra).eval()
    return student, teacher


class CountingStudent(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model_ = model
        self.calls = 0

    def forward(self, images):
        self.calls += 1
        return self.model_(images)


def _run(task: str, losses: dict):
    student, teacher = _models(task)
    terms = torch.nn.ModuleList(build_terms(task, losses, teacher, student))
    for term in terms:
        if hasattr(term, "attach"):
            term.attach(student)
    images = torch.rand(2, 3, 64, 64)
    preds = head_outputs(student(images))
    with torch.inference_mode():
        teacher_preds = _clone_float(head_outputs(teacher(images)))
    counting = CountingStudent(student)
    inputs = DistillInputs(student=preds, teacher=teacher_preds, batch={"img": images}, student_model=counting)
    values = {term.name: term(inputs) for term in terms}
    return student, teacher, terms, values, counting


@pytest.mark.parametrize("task", ["detect", "segment", "pose", "classify"])
def test_every_term_is_non_zero_when_on_and_gradients_reach_student_and_adapters_only(task):
    student, teacher, terms, values, counting = _run(task, ALL_ON)
    assert list(values) == EXPECTED["classify" if task == "classify" else "detect"]
    assert all(value.item() > 0 for value in values.values()), values
    assert counting.calls == 1  # the consistency term's flipped pass

    sum(values.values()).backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in student.parameters())
    adapters = [p for p in terms.parameters()]
    if task != "classify":  # yolov8n → yolov8s widths differ: one 1×1 conv per level
        assert len(adapters) == 6
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in adapters)
    assert all(p.grad is None for p in teacher.parameters())


@pytest.mark.parametrize("task", ["detect", "classify"])
def test_weight_zero_reports_zero_without_computing(task):
    _, _, terms, values, counting = _run(task, ALL_OFF)
    assert all(value.item() == 0 and not value.requires_grad for value in values.values())
    assert counting.calls == 0  # no flipped pass
    assert len(list(terms.parameters())) == 0  # no adapters to train or save


def test_flip_back_maps_each_column_to_its_mirror_per_level():
    shapes = [(2, 4), (1, 2)]
    columns = [torch.arange(w).repeat(h) for h, w in shapes]  # each anchor holds its column index
    flat = torch.cat(columns).float().view(1, 1, -1)
    back = flip_back(flat, shapes)
    expected = torch.cat([(w - 1 - torch.arange(w)).repeat(h) for h, w in shapes]).float()
    assert torch.equal(back.view(-1), expected)

    reg_max = 2
    boxes = torch.arange(4).repeat_interleave(reg_max).float().view(1, 8, 1).expand(1, 8, 10)  # side id per row
    swapped = flip_back_boxes(boxes.contiguous(), shapes, reg_max).view(1, 4, reg_max, 10)
    assert swapped[0, :, 0, 0].tolist() == [2.0, 1.0, 0.0, 3.0]  # left ↔ right, top and bottom stay


def test_consistency_is_zero_for_a_flip_equivariant_student_and_positive_otherwise():
    shapes = [(4, 4), (2, 2)]
    torch.manual_seed(0)
    original = {"scores": torch.randn(2, 3, 20), "boxes": torch.randn(2, 64, 20),
                "feats": [torch.zeros(2, 8, h, w) for h, w in shapes]}
    mirrored = {"scores": flip_back(original["scores"], shapes),
                "boxes": flip_back_boxes(original["boxes"], shapes, 16), "feats": original["feats"]}
    term = FlipConsistency(weight=1.0, classify=False)
    batch = {"img": torch.zeros(2, 3, 64, 64)}
    equivariant = term(DistillInputs(original, None, batch, student_model=lambda images: mirrored))
    assert equivariant.item() == pytest.approx(0.0, abs=1e-6)
    broken = term(DistillInputs(original, None, batch, student_model=lambda images: original))
    assert broken.item() > 0.01


def test_channel_wise_kl_is_zero_for_equal_maps_and_ignores_scale():
    teacher = torch.randn(2, 4, 5, 5)
    assert channel_wise_kl(teacher.clone(), teacher, 1.0).item() == pytest.approx(0.0, abs=1e-6)
    assert channel_wise_kl(teacher + 3.0, teacher, 1.0).item() == pytest.approx(0.0, abs=1e-5)  # per-channel shift
    assert channel_wise_kl(torch.randn(2, 4, 5, 5), teacher, 1.0).item() > 0.1
