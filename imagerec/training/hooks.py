"""Callbacks around the Ultralytics training loop: logs, per-epoch metrics, progress, checkpoints, cancel.

Nothing here copies the loop; each method is registered for the trainer event of the same name.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from imagerec.tasks.reporter import TaskReporter
from imagerec.tasks.service import RESUME_CHECKPOINT
from imagerec.training.metrics import normalize, summary_line

EVENTS = (
    "on_pretrain_routine_end",
    "on_train_start",
    "on_train_epoch_start",
    "on_train_batch_end",
    "on_train_epoch_end",
    "on_fit_epoch_end",
    "on_model_save",
    "on_train_end",
)


class TrainingCancelled(Exception):
    """A cancel seen during set-up: the run ends before its first batch (the runner records it)."""


class TrainingHooks:
    def __init__(self, *, reporter: TaskReporter, run_dir: Path,
                 epoch_values: Callable[[Any], dict[str, float]] | None = None,
                 requested_optimizer: tuple[str, float] | None = None) -> None:
        self.reporter = reporter
        self.requested_optimizer = requested_optimizer  # (name, lr0) as the request gave them
        self.run_dir = run_dir
        self.epoch_values = epoch_values  # the mode's own per-epoch values (e.g. the freeze stage)
        self.cancelled = False
        self.final_metrics: dict | None = None
        self._last_trained_epoch: int | None = None
        self._started = 0.0
        self._epoch_started = 0.0
        self._batches_done = 0
        self._checkpoint_note: str | None = None
        self.optimizer_used: dict | None = None  # what the run really optimises with (``optimizer: auto`` picks)

    def register(self, yolo) -> None:
        for event in EVENTS:
            yolo.add_callback(event, getattr(self, event))

    # -- cancel -----------------------------------------------------------------------------------------------
    def _apply_cancel(self, trainer) -> None:
        if self.reporter.cancel_requested():
            if not self.cancelled:
                batches = len(trainer.train_loader)
                self.reporter.log(
                    f"cancel seen in epoch {trainer.epoch + 1}/{trainer.epochs} after {self._batches_done} of "
                    f"{batches} batches: finishing this batch, then saving a checkpoint that holds epoch "
                    f"{trainer.epoch + 1} as trained so far (a resume continues at epoch {trainer.epoch + 2})"
                )
            self.cancelled = True
            trainer.stop = True

    def on_pretrain_routine_end(self, trainer) -> None:
        # A cancel seen before the first batch ends the run here: nothing is trained, validated or saved.
        if self.reporter.cancel_requested():
            raise TrainingCancelled()
        nb = len(trainer.train_loader)
        self.optimizer_used = _optimizer_used(trainer, self.requested_optimizer)
        self.reporter.log(
            f"setup done: {trainer.args.task} model on {trainer.device}, {len(trainer.train_loader.dataset)} train "
            f"images in {nb} batches of {trainer.batch_size}, imgsz {trainer.args.imgsz}, "
            f"{_describe_optimizer(self.optimizer_used)}"
        )
        self.reporter.merge_report({"optimizer": self.optimizer_used})

    # -- progress ---------------------------------------------------------------------------------------------
    def on_train_start(self, trainer) -> None:
        self._started = time.monotonic()
        first = trainer.start_epoch + 1
        note = f" (resumed at epoch {first})" if trainer.start_epoch else ""
        self.reporter.log(f"training epochs {first}..{trainer.epochs}{note}")

    def on_train_epoch_start(self, trainer) -> None:
        self._epoch_started = time.monotonic()
        self._batches_done = 0

    def _fraction(self, trainer) -> float:
        batches = max(len(trainer.train_loader), 1)
        return (trainer.epoch + min(self._batches_done / batches, 1.0)) / max(trainer.epochs, 1)

    def _eta(self, trainer, fraction: float) -> float | None:
        start_fraction = trainer.start_epoch / max(trainer.epochs, 1)
        done = fraction - start_fraction
        if done <= 0:
            return None
        return (time.monotonic() - self._started) * (1.0 - fraction) / done

    def _report_progress(self, trainer, *, force: bool = False) -> None:
        fraction = self._fraction(trainer)
        self.reporter.progress(
            epoch=trainer.epoch, total_epochs=trainer.epochs, fraction=fraction,
            eta_seconds=self._eta(trainer, fraction), force=force,
        )

    def on_train_batch_end(self, trainer) -> None:
        self._batches_done += 1
        self._apply_cancel(trainer)
        self._report_progress(trainer)

    def on_train_epoch_end(self, trainer) -> None:
        self._last_trained_epoch = trainer.epoch

    # -- metrics and checkpoints ------------------------------------------------------------------------------
    def on_fit_epoch_end(self, trainer) -> None:
        raw = dict(trainer.metrics or {})
        if trainer.epoch != self._last_trained_epoch:  # final_eval re-validates best.pt at epoch + 1
            self.final_metrics = normalize(raw)
            return
        values = normalize({**trainer.label_loss_items(trainer.tloss, prefix="train"), **raw, **trainer.lr})
        values["fitness"] = float(trainer.fitness) if trainer.fitness is not None else None
        if self.epoch_values is not None:
            values.update(self.epoch_values(trainer))
        epoch = trainer.epoch + 1
        lines = [summary_line(epoch, trainer.epochs, values, time.monotonic() - self._epoch_started)]
        if self._checkpoint_note:
            lines.append(self._checkpoint_note)
            self._checkpoint_note = None
        self.reporter.epoch_metrics(epoch=epoch, values=values, lines=lines)
        if self.cancelled:  # cut short: the checkpoint counts this epoch, the percentage the batches it trained
            self.reporter.progress(epoch=epoch, total_epochs=trainer.epochs, fraction=self._fraction(trainer),
                                   eta_seconds=None, force=True)
            return
        self._batches_done = len(trainer.train_loader)
        self.reporter.progress(
            epoch=epoch, total_epochs=trainer.epochs, fraction=epoch / max(trainer.epochs, 1),
            eta_seconds=self._eta(trainer, epoch / max(trainer.epochs, 1)), force=True,
        )

    def on_model_save(self, trainer) -> None:
        # Ultralytics strips the optimizer from last.pt when training ends (also on cancel), which makes it
        # unresumable; keep a full copy for resume.
        checkpoint = self.run_dir / RESUME_CHECKPOINT
        partial = checkpoint.with_suffix(".partial")
        shutil.copyfile(trainer.last, partial)
        partial.replace(checkpoint)
        best = ", new best" if trainer.best_fitness == trainer.fitness else ""
        # logged after the epoch's metrics line (on_fit_epoch_end comes after this event)
        self._checkpoint_note = f"checkpoint saved: last.pt{best}"

    def on_train_end(self, trainer) -> None:
        elapsed = time.monotonic() - self._started
        self.reporter.log(f"training loop ended after {elapsed:.1f} s; best weights: {Path(trainer.best).name}")


def _optimizer_used(trainer, requested: tuple[str, float] | None) -> dict:
    """The optimizer class and learning rate the run uses; with ``optimizer: auto`` Ultralytics chose both (and
    rewrites its own args, so the request's values are passed in)."""
    group = trainer.optimizer.param_groups[0]
    name, lr0 = requested or (str(trainer.args.optimizer), float(trainer.args.lr0))
    return {
        "requested": name,
        "name": type(trainer.optimizer).__name__,
        "lr0": float(group.get("initial_lr", group["lr"])),
        "lr0_requested": float(lr0),
        "lr0_used_as_given": name.lower() != "auto",
    }


def _describe_optimizer(used: dict) -> str:
    text = f"optimizer {used['name']} with lr0 {used['lr0']:.6g}"
    if used["lr0_used_as_given"]:
        return text
    return (f"{text} (chosen by optimizer 'auto', which ignores the requested lr0 {used['lr0_requested']:.6g}; "
            "name an optimizer to have lr0 used as given)")
