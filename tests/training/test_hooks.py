"""The training callbacks against a tiny stand-in trainer (no Ultralytics loop needed)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from imagerec.training.hooks import TrainingCancelled, TrainingHooks
from imagerec.training.metrics import normalize


class FakeReporter:
    def __init__(self, cancel: bool = False) -> None:
        self.cancel = cancel
        self.lines: list[str] = []
        self.metrics: list[tuple[int, dict]] = []
        self.progress_calls: list[dict] = []

    def cancel_requested(self) -> bool:
        return self.cancel

    def log(self, message: str, *, level: str = "info") -> None:
        self.lines.append(message)

    def progress(self, **values) -> None:
        self.progress_calls.append(values)

    def epoch_metrics(self, *, epoch: int, values: dict, lines: list[str]) -> None:
        self.metrics.append((epoch, values))
        self.lines += lines

    def merge_report(self, values: dict) -> None:
        self.report = {**getattr(self, "report", {}), **values}


class _AdamW:
    param_groups = [{"lr": 0.000714, "initial_lr": 0.000714}]


def fake_trainer(tmp_path: Path, **overrides):
    last = tmp_path / "last.pt"
    last.write_bytes(b"checkpoint")
    values = dict(
        stop=False, epoch=0, epochs=3, start_epoch=0, train_loader=[0] * 4, batch_size=2,
        metrics={"metrics/mAP50-95(B)": 0.25, "metrics/mAP50(M)": 0.5}, lr={"lr/pg0": 0.01, "lr/pg1": 0.01},
        tloss=None, fitness=0.3, best_fitness=0.3, last=last, best=tmp_path / "best.pt",
        label_loss_items=lambda loss, prefix: {f"{prefix}/box_loss": 1.5},
        device="cpu", optimizer=_AdamW(), args=SimpleNamespace(task="detect", imgsz=64, optimizer="auto", lr0=0.01),
    )
    trainer = SimpleNamespace(**{**values, **overrides})
    trainer.train_loader = _Loader(4)
    return trainer


class _Loader(list):
    def __init__(self, batches: int) -> None:
        super().__init__(range(batches))
        self.dataset = list(range(batches * 2))


def test_a_cancel_seen_at_the_end_of_setup_ends_the_run_before_its_first_batch(tmp_path):
    hooks = TrainingHooks(reporter=FakeReporter(cancel=True), run_dir=tmp_path)
    with pytest.raises(TrainingCancelled):
        hooks.on_pretrain_routine_end(fake_trainer(tmp_path))


def test_a_cancel_during_training_stops_at_the_batch_and_says_where_the_checkpoint_stands(tmp_path):
    reporter = FakeReporter()
    hooks = TrainingHooks(reporter=reporter, run_dir=tmp_path)
    trainer = fake_trainer(tmp_path, epoch=1)
    hooks.on_pretrain_routine_end(trainer)
    hooks.on_train_epoch_start(trainer)
    reporter.cancel = True
    hooks.on_train_batch_end(trainer)
    assert trainer.stop is True and hooks.cancelled
    assert "cancel seen in epoch 2/3 after 1 of 4 batches" in reporter.lines[-1]
    assert "a resume continues at epoch 3" in reporter.lines[-1]
    trainer.stop = False  # what a later reset would do
    hooks.on_train_batch_end(trainer)
    assert trainer.stop is True


def test_the_optimizer_auto_chose_is_recorded_with_its_learning_rate(tmp_path):
    reporter = FakeReporter()
    hooks = TrainingHooks(reporter=reporter, run_dir=tmp_path, requested_optimizer=("auto", 0.01))
    hooks.on_pretrain_routine_end(fake_trainer(tmp_path))
    assert reporter.report["optimizer"] == {"requested": "auto", "name": "_AdamW", "lr0": 0.000714,
                                            "lr0_requested": 0.01, "lr0_used_as_given": False}
    assert "ignores the requested lr0 0.01" in reporter.lines[-1]


def test_epoch_metrics_then_final_eval_is_not_an_epoch(tmp_path):
    reporter = FakeReporter()
    hooks = TrainingHooks(reporter=reporter, run_dir=tmp_path)
    trainer = fake_trainer(tmp_path)
    hooks.on_train_start(trainer)
    hooks.on_train_epoch_start(trainer)
    hooks.on_train_epoch_end(trainer)
    hooks.on_model_save(trainer)
    hooks.on_fit_epoch_end(trainer)
    assert (tmp_path / "resume.pt").read_bytes() == b"checkpoint"
    assert [epoch for epoch, _ in reporter.metrics] == [1]
    assert reporter.metrics[0][1]["mAP50-95"] == 0.25 and reporter.metrics[0][1]["train_box_loss"] == 1.5
    assert reporter.lines[-2].startswith("epoch 1/3") and "checkpoint saved" in reporter.lines[-1]

    trainer.epoch += 1  # Ultralytics' final_eval validates best.pt at epoch + 1
    hooks.on_fit_epoch_end(trainer)
    assert len(reporter.metrics) == 1 and hooks.final_metrics["mAP50-95"] == 0.25


def test_metric_names_are_normalised_for_every_head():
    raw = {
        "metrics/precision(B)": 0.5, "metrics/mAP50-95(M)": 0.2, "metrics/mAP50(P)": 0.4,
        "metrics/accuracy_top1": 0.9, "val/seg_loss": 1.0, "train/loss": 2.0, "lr/pg0": 0.01, "lr/pg2": 0.02,
        "fitness": float("nan"),
    }
    assert normalize(raw) == {
        "precision": 0.5, "mask_mAP50-95": 0.2, "pose_mAP50": 0.4, "top1": 0.9, "val_seg_loss": 1.0,
        "train_loss": 2.0, "lr": 0.01, "lr_pg2": 0.02, "fitness": None,
    }


def test_a_modes_epoch_values_join_the_metrics_row(tmp_path):
    reporter = FakeReporter()
    hooks = TrainingHooks(reporter=reporter, run_dir=tmp_path, epoch_values=lambda trainer: {"stage": 2.0})
    trainer = fake_trainer(tmp_path)
    hooks.on_train_start(trainer)
    hooks.on_train_epoch_end(trainer)
    hooks.on_fit_epoch_end(trainer)
    assert reporter.metrics[0][1]["stage"] == 2.0 and reporter.metrics[0][1]["mAP50-95"] == 0.25
