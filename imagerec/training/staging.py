"""Trainer callbacks that apply a freeze schedule inside one continuous Ultralytics run.

Ultralytics 8.4.190 facts this relies on (engine/trainer.py):

- ``_setup_train`` sets ``requires_grad`` from ``args.freeze`` and forces it back on for every other parameter
  *before* ``on_pretrain_routine_end``, so our flags are set later, at each ``on_train_epoch_start``;
- ``build_optimizer`` puts every parameter in a group whatever its ``requires_grad``, so a layer released later
  is already in the optimizer (and a frozen one has no gradient, which every torch optimizer skips);
- each epoch runs ``on_train_epoch_start`` → ``scheduler.step()`` → ``_model_train()``, and the last puts into
  ``eval()`` every BatchNorm2d whose module name contains one of ``trainer.freeze_layer_names``: setting that list
  here is the native way to hold (or not) the running statistics of frozen layers;
- the LambdaLR scheduler sets ``lr = base_lrs[i] * lf(epoch)`` on each step, and warm-up interpolates towards
  ``group["initial_lr"] * lf(epoch)``; ``base_lrs`` are captured when the scheduler is built, before a resume
  loads the optimizer state (whose ``initial_lr`` may carry an earlier stage's scale). So the unscaled bases
  are taken from the scheduler once, and each epoch sets both to base × the stage's ``lr_scale``.

Everything is recomputed from ``trainer.epoch`` at every epoch start, never from counters, so a resumed run (or
an epoch Ultralytics restarts after an out-of-memory retry) lands in the right stage.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from imagerec.training.layers import layer_of, span
from imagerec.training.schedule import Stage, stage_at

logger = logging.getLogger(__name__)  # the runner forwards "imagerec.training" records to the task log

# Ultralytics keeps the DFL's fixed projection conv frozen in every run; no stage may release it.
ALWAYS_FROZEN = (".dfl",)


def _unwrap(model: Any) -> Any:
    return getattr(model, "module", model)  # DDP wraps the model; parameter names are the inner model's


def set_trainable(model: Any, frozen: Sequence[int]) -> None:
    frozen_set = set(frozen)
    for name, parameter in _unwrap(model).named_parameters():
        if not parameter.dtype.is_floating_point:
            continue
        locked = layer_of(name) in frozen_set or any(part in name for part in ALWAYS_FROZEN)
        parameter.requires_grad = not locked


def bn_hold_names(stage: Stage) -> list[str]:
    """``trainer.freeze_layer_names`` for ``stage``: whose BatchNorm layers ``_model_train`` keeps in eval()."""
    held = stage.frozen if stage.freeze_bn_stats else ()
    return [f"model.{index}." for index in held] + list(ALWAYS_FROZEN)


class StageController:
    def __init__(self, schedule: Sequence[Stage]) -> None:
        self.schedule = list(schedule)
        self._base_lrs: list[float] | None = None
        self._applied: Stage | None = None

    def callbacks(self) -> list[tuple[str, Callable]]:
        return [("on_pretrain_routine_end", self.on_pretrain_routine_end),
                ("on_train_epoch_start", self.on_train_epoch_start)]

    def epoch_values(self, trainer: Any) -> dict[str, float]:
        """Extra per-epoch metric values: the stage the epoch ran in."""
        return {"stage": float(stage_at(self.schedule, trainer.epoch).number)}

    def on_pretrain_routine_end(self, trainer: Any) -> None:
        self._base_lrs = [float(lr) for lr in trainer.scheduler.base_lrs]

    def on_train_epoch_start(self, trainer: Any) -> None:
        stage = stage_at(self.schedule, trainer.epoch)
        set_trainable(trainer.model, stage.frozen)
        trainer.freeze_layer_names = bn_hold_names(stage)
        self._scale_lr(trainer, stage.lr_scale)
        if stage is not self._applied:
            logger.info(self._change_line(trainer, stage))
            self._applied = stage

    def _scale_lr(self, trainer: Any, scale: float) -> None:
        if self._base_lrs is None:  # only if setup was skipped; the scheduler still holds unscaled bases then
            self.on_pretrain_routine_end(trainer)
        scaled = [base * scale for base in self._base_lrs]
        trainer.scheduler.base_lrs = scaled
        for group, lr in zip(trainer.optimizer.param_groups, scaled):
            group["initial_lr"] = lr

    def _change_line(self, trainer: Any, stage: Stage) -> str:
        resumed = self._applied is None and trainer.epoch > 0
        epochs = (f"epoch {stage.first_epoch + 1}" if stage.epochs == 1
                  else f"epochs {stage.first_epoch + 1}-{stage.last_epoch + 1}")
        head = (f"stage {stage.number}/{len(self.schedule)} ({epochs})"
                + (f" resumed at epoch {trainer.epoch + 1}" if resumed else ""))
        parts = [head, self._layers_text(stage), self._lr_text(trainer, stage)]
        return "; ".join(part for part in parts if part)

    def _layers_text(self, stage: Stage) -> str:
        frozen = f"frozen: {stage.label()} (layers {span(stage.frozen)})" if stage.frozen else "frozen: nothing"
        if stage.frozen:
            frozen += ", BatchNorm statistics held" if stage.freeze_bn_stats else ", BatchNorm statistics updating"
        before = set(self._applied.frozen) if self._applied else set()
        changes = [f"released layers {span(before - set(stage.frozen))}" if before - set(stage.frozen) else "",
                   f"newly frozen layers {span(set(stage.frozen) - before)}"
                   if self._applied and set(stage.frozen) - before else ""]
        return "; ".join(part for part in [frozen, *changes] if part)

    def _lr_text(self, trainer: Any, stage: Stage) -> str:
        base = self._base_lrs[0]
        factor = float(trainer.lf(trainer.epoch))
        args = getattr(trainer, "args", None)
        # Ultralytics warms up over min(warmup_epochs, epochs - 1) epochs, ramping towards this value
        warmup = min(getattr(args, "warmup_epochs", 0), max(getattr(trainer, "epochs", 1) - 1, 0))
        return (f"lr {base * stage.lr_scale * factor:.4g} (base {base:.4g} × lr_scale {stage.lr_scale:g} × "
                f"schedule {factor:.3g}{', warm-up ramping towards it' if trainer.epoch < warmup else ''})")
