"""The training child's main: the same for every mode; the mode's strategy supplies what differs."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from imagerec.config import Settings
from imagerec.db import unit_of_work
from imagerec.model_versions import service as models_service
from imagerec.model_versions.models import ModelVersion
from imagerec.tasks import repository
from imagerec.tasks.models import TaskStatus
from imagerec.training import ultralytics_env
from imagerec.training.context import RunContext, load_context
from imagerec.training.devices import resolve_device
from imagerec.training.hooks import TrainingHooks
from imagerec.tasks.reporter import TaskReporter, WarningForwarder
from imagerec.training.schemas import TrainingMode
from imagerec.training.strategies import STRATEGIES, TrainPlan


def _train_args(ctx: RunContext, plan: TrainPlan) -> dict:
    params = ctx.params
    workers = params.get("workers")
    args = {
        "data": plan.data,
        "epochs": params["epochs"],
        "imgsz": params["imgsz"],
        "batch": params["batch"],
        "device": resolve_device(params["device"]),
        "optimizer": params["optimizer"],
        "lr0": params["lr0"],
        "patience": params["patience"],
        "seed": params["seed"],
        "workers": ctx.settings.default_workers if workers is None else workers,
        "project": str(ctx.run_dir),
        "name": "train",
        "exist_ok": True,
        "plots": False,  # plotting fetches fonts from the internet; the metrics live in the database
        "verbose": True,
    }
    return args | plan.train_args


def _fit(ctx: RunContext, plan: TrainPlan, hooks: TrainingHooks):
    """Run Ultralytics' own loop (fresh, or resumed from the task's checkpoint); return its trainer."""
    from ultralytics import YOLO

    args = _train_args(ctx, plan)
    yolo = YOLO(str(ctx.resume_from)) if ctx.resume_from else plan.model
    hooks.register(yolo)
    for event, callback in plan.callbacks:
        yolo.add_callback(event, callback)
    if ctx.resume_from:
        args = {"resume": True, "data": args["data"], "device": args["device"], "workers": args["workers"],
                "save_dir": str(ctx.run_dir / "train")}
    yolo.train(trainer=plan.trainer_class, **args)
    return yolo.trainer


def _register(session: Session, *, ctx: RunContext, plan: TrainPlan, trainer, metrics: dict) -> ModelVersion:
    best = Path(trainer.best) if Path(trainer.best).exists() else Path(trainer.last)
    weights_path = models_service.store_weights(settings=ctx.settings, source=best)
    model = ModelVersion(
        name=ctx.name or f"{plan.architecture}-{ctx.task}-task{ctx.task_id}",
        task=ctx.task,
        architecture=plan.architecture,
        class_names=[trainer.data["names"][i] for i in sorted(trainer.data["names"])],
        imgsz=int(trainer.args.imgsz),
        metrics=metrics,
        weights_path=weights_path,
        training_mode=ctx.mode,
        info=plan.model_info,
        dataset_id=ctx.dataset.id,
        training_task_id=ctx.task_id,
        parent_id=plan.parent_model_id,
    )
    return models_service.register(session, model=model)


def _finish(ctx: RunContext, *, factory, plan: TrainPlan, hooks: TrainingHooks, trainer, elapsed: float) -> None:
    """The end state, the registered model and the last log line commit together (or not at all)."""
    report = STRATEGIES[TrainingMode(ctx.mode)].report(ctx, trainer, cancelled=hooks.cancelled)
    metrics = hooks.final_metrics or {}
    with unit_of_work(factory) as session:
        if hooks.cancelled:
            repository.transition(session, task_id=ctx.task_id, from_=[TaskStatus.running],
                                  to=TaskStatus.cancelled, report=report, eta_seconds=None)
            repository.append_log(session, task_id=ctx.task_id,
                                  message=f"cancelled after {elapsed:.1f} s; checkpoints kept, resume to continue")
            return
        model = _register(session, ctx=ctx, plan=plan, trainer=trainer, metrics=metrics)
        moved = repository.transition(session, task_id=ctx.task_id, from_=[TaskStatus.running],
                                      to=TaskStatus.succeeded, report=report, latest_metrics=metrics or None,
                                      progress=1.0, eta_seconds=0.0)
        if not moved:
            raise RuntimeError("the task left 'running' before it could be completed")
        repository.append_log(session, task_id=ctx.task_id,
                              message=f"succeeded in {elapsed:.1f} s; registered model {model.id}")


def _forward_training_log(reporter: TaskReporter) -> None:
    """Strategies' callbacks log to ``imagerec.training.*`` (they hold no reporter); those lines join the task log."""
    training_log = logging.getLogger("imagerec.training")
    training_log.setLevel(logging.INFO)
    training_log.addHandler(WarningForwarder(reporter, level=logging.INFO))


def run(*, task_id: int, settings: Settings, session_factory: sessionmaker[Session]) -> None:
    started = time.monotonic()
    reporter = TaskReporter(task_id=task_id, session_factory=session_factory)
    ctx = load_context(task_id=task_id, settings=settings, session_factory=session_factory)
    reporter.log(f"{ctx.mode} training of dataset '{ctx.dataset.name}' ({ctx.task}) starting"
                 + (f", resuming from {ctx.resume_from.name}" if ctx.resume_from else ""))
    ultralytics_env.configure(settings)
    logging.getLogger("ultralytics").addHandler(WarningForwarder(reporter))
    _forward_training_log(reporter)
    strategy = STRATEGIES[TrainingMode(ctx.mode)]
    plan = strategy.plan(ctx)
    hooks = TrainingHooks(reporter=reporter, run_dir=ctx.run_dir, epoch_values=plan.epoch_values)
    trainer = _fit(ctx, plan, hooks)
    _finish(ctx, factory=session_factory, plan=plan, hooks=hooks, trainer=trainer,
            elapsed=time.monotonic() - started)
