"""A real tiny distillation with the trainer class the service runs: the teacher stays as it was, the student
and the adapters learn, each term is a loss column, and the saved student is plain Ultralytics."""

from __future__ import annotations

import pickletools
import zipfile

import numpy as np
import pytest
import torch

from imagerec.training.distill.losses import term_factory
from imagerec.training.distill.trainer import TERMS_STATE, DistillSpec, DistillTrainerMixin, trainer_class
from tests.training.distill.conftest import TINY

pytestmark = pytest.mark.training
LOSSES = {"consistency": {"weight": 0.5}}  # every term on


def _snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: value.detach().clone() for name, value in module.state_dict().items()}


def _changed(before: dict, after: dict) -> bool:
    return any(not torch.equal(before[name], after[name]) for name in before)


def _pickled_modules(checkpoint) -> set[str]:
    """The modules whose classes or functions unpickling ``checkpoint`` (a torch zip) would import."""
    with zipfile.ZipFile(checkpoint) as archive:
        data = archive.read(next(name for name in archive.namelist() if name.endswith("/data.pkl")))
    modules, strings, memo = set(), [], {}
    for opcode, argument, _position in pickletools.genops(data):
        if opcode.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "BINUNICODE8"):
            strings.append(argument)
        elif opcode.name in ("BINGET", "LONG_BINGET", "GET") and isinstance(memo.get(argument), str):
            strings.append(memo[argument])
        elif opcode.name in ("BINPUT", "LONG_BINPUT", "PUT") and strings:
            memo[argument] = strings[-1]
        elif opcode.name == "MEMOIZE" and strings:
            memo[len(memo)] = strings[-1]
        elif opcode.name == "GLOBAL":
            modules.add(argument.split(" ")[0])
        elif opcode.name == "STACK_GLOBAL":
            modules.add(strings[-2])
    return modules


def test_distillation_trains_student_and_adapters_never_the_teacher(teachers, tmp_path):
    from ultralytics import YOLO

    teacher = teachers("detect")
    spec = DistillSpec(teacher_weights=teacher.weights, make_terms=term_factory("detect", LOSSES))
    snapshots: dict[str, dict] = {}

    def on_train_start(trainer):
        snapshots["teacher"] = _snapshot(trainer.distill_teacher)
        snapshots["adapters"] = _snapshot(trainer.distill_terms)
        snapshots["student"] = _snapshot(trainer.model)

    student = YOLO("yolov8n.yaml")
    student.add_callback("on_train_start", on_train_start)
    student.train(data=teacher.data, trainer=trainer_class("detect", (DistillTrainerMixin,), distill=spec),
                  epochs=1, project=str(tmp_path), name="run", **TINY | {"batch": 4})
    trainer = student.trainer

    assert trainer.loss_names == ("box_loss", "cls_loss", "dfl_loss", "kd_cls", "kd_box", "kd_feature",
                                  "consistency")
    assert all(trainer.tloss[name].item() > 0 for name in trainer.loss_names)
    assert not _changed(snapshots["teacher"], _snapshot(trainer.distill_teacher))
    assert all(not p.requires_grad for p in trainer.distill_teacher.parameters())
    assert _changed(snapshots["adapters"], _snapshot(trainer.distill_terms))
    assert _changed(snapshots["student"], _snapshot(trainer.model))

    saved_terms = torch.load(trainer.wdir / TERMS_STATE, weights_only=True)
    assert set(saved_terms) == set(trainer.distill_terms.state_dict())  # adapters kept for resume, beside last.pt

    # no teacher, terms, adapters or hooks pickled with the student (its text, e.g. the git commit message
    # Ultralytics records, may well say "imagerec": only the classes a load would import count)
    best = trainer.best
    assert not [module for module in _pickled_modules(best) if module.split(".")[0] == "imagerec"]
    checkpoint = torch.load(best, weights_only=False)
    saved_student = checkpoint["ema"] or checkpoint["model"]  # final checkpoints keep the EMA as "model"
    assert getattr(saved_student, "criterion", None) is None
    plain = YOLO(str(best))
    student_size = sum(p.numel() for p in trainer.model.parameters())
    assert sum(p.numel() for p in plain.model.parameters()) == student_size  # the student's own layers only
    result = plain.predict(np.zeros((64, 64, 3), dtype=np.uint8), imgsz=64, verbose=False)[0]
    assert result.names == dict(enumerate(teacher.class_names))
