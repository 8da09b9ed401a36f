"""The training child's main: the same for every mode; the mode's strategy supplies what differs."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from imagerec.config import Settings
from imagerec.db import utcnow
from imagerec.evaluation import repository as evaluations
from imagerec.evaluation import results
from imagerec.evaluation.models import Evaluation
from imagerec.model_versions import service as models_service
from imagerec.model_versions.models import ModelVersion
from imagerec.tasks import repository
from imagerec.tasks.models import TaskStatus
from imagerec.tasks.reporter import TaskReporter, WarningForwarder
from imagerec.training import ultralytics_env
from imagerec.training.checkpoint import CompletedRun, read_facts
from imagerec.training.context import RunContext, load_context
from imagerec.training.devices import resolve_device
from imagerec.training.hooks import TrainingCancelled, TrainingHooks
from imagerec.training.metrics import normalize
from imagerec.training.schemas import TrainingMode
from imagerec.training.strategies import STRATEGIES, TrainPlan

TRAINING_EVAL_CONF = 0.25  # the operating confidence a training's evaluation reports precision and recall at


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
        "plots": ctx.settings.training_plots,  # results.png, curves, confusion matrix (fonts are local)
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


def _train_or_complete(ctx: RunContext, plan: TrainPlan, hooks: TrainingHooks, reporter: TaskReporter):
    """Train; or, when the checkpoint already holds every epoch, validate and hand back the completed run."""
    if ctx.resume_from is None:
        return _fit(ctx, plan, hooks)
    facts = read_facts(ctx.resume_from)
    reporter.log(facts.describe())
    if not facts.complete:
        return _fit(ctx, plan, hooks)
    run = CompletedRun.validate(checkpoint_path=ctx.resume_from, train_dir=ctx.run_dir / "train", data=plan.data,
                                run_dir=ctx.run_dir)
    hooks.final_metrics = normalize(run.metrics)
    return run


def _model_row(ctx: RunContext, plan: TrainPlan, trainer, *, weights_path: str, metrics: dict) -> ModelVersion:
    return ModelVersion(
        name=ctx.name or f"{plan.architecture}-{ctx.task}-task{ctx.task_id}",
        task=ctx.task,
        architecture=plan.architecture,
        class_names=_class_names(trainer),
        imgsz=int(trainer.args.imgsz),
        metrics=metrics,
        weights_path=weights_path,
        training_mode=ctx.mode,
        info=plan.model_info,
        dataset_id=ctx.dataset.id,
        training_task_id=ctx.task_id,
        parent_id=plan.parent_model_id,
        created_by=ctx.created_by,
    )


def _final_evaluation(ctx: RunContext, trainer, reporter: TaskReporter) -> dict | None:
    """The trainer's final validation as the fields of the new model's evaluation row (all but ``model_id``), or
    None, with a warning, when it cannot be read: the model is registered either way."""
    try:
        names = _class_names(trainer)
        metrics = _final_validation_metrics(trainer)
        result = results.result(metrics, task=ctx.task, names=dict(enumerate(names)), conf=TRAINING_EVAL_CONF,
                                confusion_at={"conf": 0.001, "iou": 0.45})  # Ultralytics' own, in training
        json.dumps(result, allow_nan=False)  # what any database's JSON column takes
    except Exception as error:  # the model must not be lost to its evaluation
        reporter.log(f"the final validation could not be stored as the model's evaluation: {error!r}",
                     level="warning")
        return None
    params = {"conf": TRAINING_EVAL_CONF, "iou": 0.7, "match_iou": 0.5, "imgsz": int(trainer.args.imgsz),
              "batch": int(trainer.args.batch), "device": str(trainer.args.device), "analysis": False,
              "split": "val"}
    return {"task_id": None, "dataset_id": ctx.dataset.id, "split": "val", "vision_task": ctx.task,
            "source": "training", "params": params, "recorded_status": "succeeded", "metrics": result,
            "classes": {"common": names, "model_only": [], "dataset_only": []},
            "images": _validation_images(trainer),
            "files_dir": (ctx.run_dir / "train").relative_to(ctx.settings.data_dir).as_posix(),
            "finished_at": utcnow(), "created_by": ctx.created_by}


def _final_validation_metrics(trainer):
    """Ultralytics' metrics object of the last validation: ``final_eval`` runs the trainer's validator on best.pt,
    and its ``metrics`` keep the curves, per-class AP and confusion matrix (``clear_stats`` drops only the raw
    lists). A ``CompletedRun`` (a resumed run that was already complete) carries the metrics of its own
    validation the same way."""
    metrics = getattr(getattr(trainer, "validator", None), "metrics", None)
    if metrics is None:
        raise LookupError("the run kept no validation metrics object")
    return metrics


def _validation_images(trainer) -> int | None:
    try:
        return len(trainer.validator.dataloader.dataset)
    except (AttributeError, TypeError):
        return None


def _class_names(trainer) -> list[str]:
    return [trainer.data["names"][i] for i in sorted(trainer.data["names"])]


def _report(ctx: RunContext, trainer, hooks: TrainingHooks) -> dict | None:
    report = STRATEGIES[TrainingMode(ctx.mode)].report(ctx, trainer, cancelled=hooks.cancelled)
    if hooks.optimizer_used is None:
        return report
    return {**(report or {}), "optimizer": hooks.optimizer_used}


def _finish_cancelled(reporter: TaskReporter, *, message: str, **values) -> None:
    def write(session: Session) -> None:
        if repository.transition(session, task_id=reporter.task_id, from_=[TaskStatus.running],
                                 to=TaskStatus.cancelled, **values):
            repository.append_log(session, task_id=reporter.task_id, message=message)

    reporter.finish(write)


def _finish(ctx: RunContext, *, reporter: TaskReporter, plan: TrainPlan, hooks: TrainingHooks, trainer,
            elapsed: float) -> None:
    """The end state, the registered model and the last log line commit together (or not at all). The weights
    are copied into the registry once; the transaction is retried until the database takes it."""
    report = _report(ctx, trainer, hooks)
    if hooks.cancelled:
        _finish_cancelled(reporter, report=report,
                          message=f"cancelled after {elapsed:.1f} s; checkpoints kept, resume to continue")
        return
    metrics = hooks.final_metrics or {}
    evaluation = _final_evaluation(ctx, trainer, reporter)
    best = Path(trainer.best) if Path(trainer.best).exists() else Path(trainer.last)
    weights_path = models_service.store_weights(settings=ctx.settings, source=best)

    def write(session: Session) -> int:
        model = models_service.register(
            session, model=_model_row(ctx, plan, trainer, weights_path=weights_path, metrics=metrics))
        if evaluation is not None:
            evaluations.add(session, evaluation=Evaluation(model_id=model.id, **evaluation))
        moved = repository.transition(session, task_id=ctx.task_id, from_=[TaskStatus.running],
                                      to=TaskStatus.succeeded, report=report, latest_metrics=metrics or None,
                                      progress=1.0)
        if not moved:
            raise RuntimeError("the task left 'running' before it could be completed")
        repository.append_log(session, task_id=ctx.task_id,
                              message=f"succeeded in {elapsed:.1f} s; registered model {model.id}")
        return model.id

    try:
        reporter.finish(write, what="registering the model")
    except BaseException:
        models_service.discard_weights(settings=ctx.settings, weights_path=weights_path)
        raise


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
    plan = STRATEGIES[TrainingMode(ctx.mode)].plan(ctx)
    hooks = TrainingHooks(reporter=reporter, run_dir=ctx.run_dir, epoch_values=plan.epoch_values,
                          requested_optimizer=(ctx.params["optimizer"], ctx.params["lr0"]))
    try:
        trainer = _train_or_complete(ctx, plan, hooks, reporter)
    except TrainingCancelled:
        _finish_cancelled(reporter, message=(
            f"cancelled during set-up, after {time.monotonic() - started:.1f} s: nothing more was trained"
            + ("; the checkpoint is kept, resume to continue" if ctx.resume_from else "")))
        return
    _finish(ctx, reporter=reporter, plan=plan, hooks=hooks, trainer=trainer, elapsed=time.monotonic() - started)
