"""The stage callbacks: against a stand-in trainer, then inside a real (tiny) Ultralytics run with probes.

The real run is ``YOLO(...).train(...)`` in the test process with ``StageController``'s callbacks and a probe
callback that snapshots the model and the optimizer's learning rates at every epoch boundary: real training,
no mocks; the checks are on what the snapshots show.
"""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest
import torch
import yaml
from torch import nn

from imagerec.config import Settings
from imagerec.datasets.synthetic import write_dataset
from imagerec.training import ultralytics_env
from imagerec.training.layers import LayerGroups, layer_of
from imagerec.training.schedule import build_schedule
from imagerec.training.staging import StageController

# -- stand-in trainer -------------------------------------------------------------------------------------------


class _Head(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.cv = nn.Conv2d(4, 4, 1)
        self.dfl = nn.Conv2d(4, 1, 1, bias=False)  # Ultralytics keeps this one frozen


class _Tiny(nn.Module):
    """Named like a YOLO model: model.<layer>.…; layers 0-1 backbone, 2 neck, 3 head."""

    yaml = {"backbone": [[-1, 1, "Conv", []]] * 2, "head": [[-1, 1, "Conv", []], [-1, 1, "Detect", []]]}

    def __init__(self) -> None:
        super().__init__()
        self.model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4), nn.Conv2d(4, 4, 1), _Head())


def _stand_in_trainer(epoch: int = 0):
    model = _Tiny()
    optimizer = torch.optim.SGD([{"params": [p for n, p in model.named_parameters() if "bias" not in n]},
                                 {"params": [p for n, p in model.named_parameters() if "bias" in n]}], lr=0.01)
    lf = lambda x: 1.0 - 0.1 * x  # noqa: E731  (Ultralytics' linear schedule shape)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda=lf)
    return SimpleNamespace(model=model, optimizer=optimizer, scheduler=scheduler, lf=lf, epoch=epoch,
                           freeze_layer_names=[])


TINY_STAGES = [
    {"epochs": 2, "freeze": "backbone", "lr_scale": 1.0},
    {"epochs": 2, "freeze": [0], "lr_scale": 0.5, "freeze_bn_stats": False},
    {"epochs": 1, "freeze": "none", "lr_scale": 0.1},
]


def _controller() -> StageController:
    return StageController(build_schedule({"stages": TINY_STAGES}, LayerGroups.from_model_yaml(_Tiny.yaml)))


def _trainable_layers(model) -> dict[str, bool]:
    return {name: p.requires_grad for name, p in model.named_parameters()}


def test_stage_follows_the_epoch_and_a_resumed_run_lands_in_its_stage(caplog):
    caplog.set_level(logging.INFO, logger="imagerec.training")
    trainer = _stand_in_trainer(epoch=2)  # a run resumed at the third epoch: stage 2
    for group in trainer.optimizer.param_groups:
        group["initial_lr"] = 0.123  # what a loaded checkpoint leaves: an earlier stage's scaled value
    controller = _controller()
    controller.on_pretrain_routine_end(trainer)
    controller.on_train_epoch_start(trainer)

    grads = _trainable_layers(trainer.model)
    assert grads["model.0.weight"] is False and grads["model.1.weight"] is True  # stage 2 freezes layer 0 only
    assert grads["model.3.dfl.weight"] is False and grads["model.3.cv.weight"] is True
    assert trainer.freeze_layer_names == [".dfl"]  # stage 2 lets frozen BatchNorm statistics update
    assert trainer.scheduler.base_lrs == [0.005, 0.005]
    assert [g["initial_lr"] for g in trainer.optimizer.param_groups] == [0.005, 0.005]
    assert controller.epoch_values(trainer) == {"stage": 2.0}
    assert "stage 2/3 (epochs 3-4) resumed at epoch 3" in caplog.messages[-1]


def test_stage_changes_are_logged_with_released_layers_and_lr(caplog):
    caplog.set_level(logging.INFO, logger="imagerec.training")
    trainer, controller = _stand_in_trainer(), _controller()
    controller.on_pretrain_routine_end(trainer)
    for epoch in range(5):
        trainer.epoch = epoch
        controller.on_train_epoch_start(trainer)
    assert len(caplog.messages) == 3  # one line per stage, not per epoch
    first, second, third = caplog.messages
    assert "frozen: backbone (layers 0-1), BatchNorm statistics held" in first
    assert "released layers 1" in second and "BatchNorm statistics updating" in second
    assert "frozen: nothing" in third and "released layers 0" in third
    assert "lr 0.0006 (base 0.01 × lr_scale 0.1 × schedule 0.6)" in third
    assert trainer.freeze_layer_names == [".dfl"]
    assert all(p.requires_grad for n, p in trainer.model.named_parameters() if ".dfl" not in n)


# -- a real run with probes -------------------------------------------------------------------------------------

LR0 = 0.01
REAL_STAGES = [
    {"epochs": 1, "freeze": "backbone"},  # BatchNorm statistics held (the default)
    {"epochs": 1, "freeze": 4, "lr_scale": 0.5, "freeze_bn_stats": False},  # later backbone released
    {"epochs": 1, "freeze": "none", "lr_scale": 0.1},
]


class Probe:
    """Registered after the controller: sees each epoch as the stage left it, and the epoch's end state."""

    def __init__(self) -> None:
        self.start: dict[int, dict[str, torch.Tensor]] = {}
        self.end: dict[int, dict[str, torch.Tensor]] = {}
        self.lrs: dict[int, list[float]] = {}
        self.factors: dict[int, float] = {}
        self.dfl_trainable: list[bool] = []

    @staticmethod
    def _snapshot(trainer) -> dict[str, torch.Tensor]:
        return {name: value.detach().clone() for name, value in trainer.model.state_dict().items()}

    def on_train_epoch_start(self, trainer) -> None:
        self.start[trainer.epoch] = self._snapshot(trainer)

    def on_train_epoch_end(self, trainer) -> None:
        self.end[trainer.epoch] = self._snapshot(trainer)
        self.lrs[trainer.epoch] = [group["lr"] for group in trainer.optimizer.param_groups]
        self.factors[trainer.epoch] = trainer.lf(trainer.epoch)
        self.dfl_trainable += [p.requires_grad for n, p in trainer.model.named_parameters() if ".dfl" in n]


@pytest.fixture(scope="module")
def staged_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("staged-run")
    ultralytics_env.configure(Settings(data_dir=root / "home"))
    from ultralytics import YOLO

    dataset = write_dataset("detect", root / "data", train=16, val=8, imgsz=64, seed=3)
    data_yaml = root / "data.yaml"
    data_yaml.write_text(yaml.safe_dump(yaml.safe_load((dataset / "data.yaml").read_text()) | {"path": str(dataset)}))
    yolo = YOLO("yolov8n.yaml")
    groups = LayerGroups.from_model_yaml(yolo.model.yaml)
    schedule = build_schedule({"stages": REAL_STAGES}, groups)
    probe = Probe()
    for event, callback in StageController(schedule).callbacks():
        yolo.add_callback(event, callback)
    yolo.add_callback("on_train_epoch_start", probe.on_train_epoch_start)
    yolo.add_callback("on_train_epoch_end", probe.on_train_epoch_end)
    # nbs = batch: an optimizer step every batch (Ultralytics would otherwise accumulate across these tiny epochs)
    yolo.train(data=str(data_yaml), epochs=3, imgsz=64, batch=8, nbs=8, workers=0, device="cpu", optimizer="SGD",
               lr0=LR0, warmup_epochs=0, val=False, plots=False, verbose=False, seed=0, project=str(root / "runs"),
               name="staged", exist_ok=True)
    parameters = {name for name, _ in yolo.trainer.model.named_parameters()}
    return SimpleNamespace(probe=probe, schedule=schedule, groups=groups, parameters=parameters)


def _layer_keys(run, layers, *, suffixes=None) -> list[str]:
    names = run.parameters if suffixes is None else [k for k in run.probe.end[0] if k.endswith(suffixes)]
    return [name for name in names if layer_of(name) in set(layers)]


def _changed(before, after, keys) -> set[int]:
    """The layers among ``keys`` with at least one tensor that changed."""
    return {layer_of(key) for key in keys if not torch.equal(before[key], after[key])}


def _layers_with(run, layers) -> set[int]:
    return {layer_of(name) for name in _layer_keys(run, layers)}


@pytest.mark.training
def test_frozen_layers_are_bit_identical_through_their_stage(staged_run):
    probe = staged_run.probe
    for stage in staged_run.schedule:
        keys = _layer_keys(staged_run, stage.frozen)
        before, after = probe.start[stage.first_epoch], probe.end[stage.last_epoch]
        assert keys or not stage.frozen
        assert _changed(before, after, keys) == set(), f"stage {stage.number} moved frozen layers"


@pytest.mark.training
def test_released_layers_change_afterwards(staged_run):
    probe, (first, second, third) = staged_run.probe, staged_run.schedule
    released = set(first.frozen) - set(second.frozen)  # the later backbone blocks
    assert released and _changed(probe.end[0], probe.end[1], _layer_keys(staged_run, released)) == \
        _layers_with(staged_run, released)
    released = set(second.frozen) - set(third.frozen)
    assert released and _changed(probe.end[1], probe.end[2], _layer_keys(staged_run, released)) == \
        _layers_with(staged_run, released)
    head = {staged_run.groups.head}
    assert _changed(probe.start[0], probe.end[0], _layer_keys(staged_run, head)) == head  # trained from the start


@pytest.mark.training
def test_batchnorm_statistics_of_frozen_layers_held_or_updating_as_asked(staged_run):
    probe, (first, second, _) = staged_run.probe, staged_run.schedule
    stats = (".running_mean", ".running_var")
    held = _layer_keys(staged_run, first.frozen, suffixes=stats)  # freeze_bn_stats true
    assert held and _changed(probe.start[0], probe.end[0], held) == set()
    updating = _layer_keys(staged_run, second.frozen, suffixes=stats)  # freeze_bn_stats false
    assert updating and _changed(probe.start[1], probe.end[1], updating) == {layer_of(k) for k in updating}
    weights = _layer_keys(staged_run, second.frozen)  # …while the same layers' weights stay put
    assert _changed(probe.start[1], probe.end[1], weights) == set()


@pytest.mark.training
def test_learning_rate_is_base_times_lr_scale_times_schedule_factor(staged_run):
    probe = staged_run.probe
    for stage in staged_run.schedule:
        for epoch in range(stage.first_epoch, stage.last_epoch + 1):
            expected = LR0 * stage.lr_scale * probe.factors[epoch]
            assert probe.lrs[epoch] == pytest.approx([expected] * len(probe.lrs[epoch]), rel=1e-9), stage


@pytest.mark.training
def test_dfl_stays_frozen_in_every_stage(staged_run):
    probe = staged_run.probe
    assert probe.dfl_trainable and not any(probe.dfl_trainable)
    dfl = [key for key in probe.end[2] if ".dfl" in key]
    assert dfl and all(torch.equal(probe.start[0][key], probe.end[2][key]) for key in dfl)
