"""The evaluation child: each model of the task, in turn, through Ultralytics' validator on the same images.

Per model: write the server's data (``evaluation.data``), run ``validate`` (capturing every image's labels and
predictions when the analysis is on), turn the metrics into the stored result, match each image at the operating
point and look for likely label errors, then store it all in one transaction. The task succeeds when every model
is stored; a cancel stops at the next batch and keeps the models already stored. Nothing is written into the
dataset or the model folders: everything goes to the task's run folder and the database.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from imagerec.config import Settings
from imagerec.db import retry_busy, unit_of_work
from imagerec.evaluation import analysis, repository
from imagerec.evaluation.data import count_images, write_eval_data
from imagerec.evaluation.results import result
from imagerec.evaluation.validate import Captured, validate
from imagerec.tasks import repository as tasks_repository
from imagerec.tasks.models import TaskStatus
from imagerec.tasks.reporter import TaskReporter
from imagerec.training.context import DatasetInfo, ModelInfo, dataset_info, model_info


class EvaluationCancelled(Exception):
    pass


@dataclass(frozen=True)
class Target:
    evaluation_id: int
    model: ModelInfo
    imgsz: int


@dataclass(frozen=True)
class Job:
    task_id: int
    params: dict
    run_dir: Path
    dataset: DatasetInfo
    targets: list[Target]


def _load(task_id: int, settings: Settings, factory: sessionmaker[Session]) -> Job:
    from imagerec.datasets import repository as datasets_repository
    from imagerec.model_versions import repository as models_repository

    with unit_of_work(factory) as session:
        task = tasks_repository.get(session, task_id)
        dataset = datasets_repository.get(session, dataset_id=task.params["dataset_id"])
        if dataset is None:
            raise LookupError(f"dataset {task.params['dataset_id']} no longer exists")
        targets = []
        for evaluation in repository.of_task(session, task_id=task_id):
            model = models_repository.get(session, evaluation.model_id)
            if model is None:
                raise LookupError(f"model {evaluation.model_id} no longer exists")
            targets.append(Target(evaluation.id, model_info(settings, model), model.imgsz))
        return Job(task_id, dict(task.params), settings.data_dir / task.run_dir, dataset_info(settings, dataset),
                   targets)


def _progress(reporter: TaskReporter, *, index: int, count: int, started: float):
    def on_batch(done: int, total: int) -> None:
        if reporter.cancel_requested():
            raise EvaluationCancelled
        fraction = (index + done / max(total, 1)) / count
        elapsed = time.monotonic() - started
        reporter.progress(fraction=fraction, eta_seconds=elapsed * (1 - fraction) / fraction if fraction else None)

    return on_batch


def _evaluate(job: Job, target: Target, *, settings: Settings, reporter: TaskReporter, index: int,
              started: float) -> dict:
    from imagerec.training.devices import resolve_device

    params, work_dir, dataset = job.params, job.run_dir / f"eval-{target.evaluation_id}", job.dataset
    data, split = write_eval_data(task=dataset.task, files_dir=dataset.files_dir, dataset_names=dataset.class_names,
                                  model_names=target.model.class_names, kpt_shape=dataset.kpt_shape,
                                  flip_idx=dataset.flip_idx, split=params["split"], work_dir=work_dir)
    captured = Captured() if params["analysis"] else None
    device = resolve_device(params["device"])
    metrics = validate(target.model.weights_path, data=data, task=dataset.task, split=split,
                       imgsz=params["imgsz"] or target.imgsz, batch=params["batch"], device=device,
                       project=work_dir, name="plots", plots=True,
                       iou=params["iou"], operating_conf=params["conf"], match_iou=params["match_iou"],
                       capture=captured,
                       on_batch=_progress(reporter, index=index, count=len(job.targets), started=started))
    names = dict(enumerate(target.model.class_names))
    stored = result(metrics, task=dataset.task, names=names, conf=params["conf"],
                    confusion_at={"conf": params["conf"], "iou": params["match_iou"]})
    stored["device"] = device
    images = issues = None
    if captured is not None:
        images, issues = analysis.analyse(captured, task=dataset.task, names=names, files_dir=dataset.files_dir,
                                          copy_dir=work_dir / "data", conf=params["conf"],
                                          match_iou=params["match_iou"])
    count = count_images(dataset.files_dir, dataset.task, params["split"])
    return {"metrics": stored, "images": images, "issues": issues, "files_dir": work_dir / "plots", "count": count}


def _store(factory, settings: Settings, target: Target, outcome: dict) -> None:
    def write() -> None:
        with unit_of_work(factory) as session:
            repository.store_result(session, evaluation_id=target.evaluation_id, metrics=outcome["metrics"],
                                    images=outcome["images"], label_issues=outcome["issues"],
                                    files_dir=str(outcome["files_dir"].relative_to(settings.data_dir)),
                                    count=outcome["count"])

    retry_busy(write, what="the evaluation's result", deadline_seconds=None)


def run(*, task_id: int, settings: Settings, session_factory: sessionmaker[Session]) -> None:
    from imagerec.training import ultralytics_env

    ultralytics_env.configure(settings)
    reporter = TaskReporter(task_id=task_id, session_factory=session_factory)
    job = _load(task_id, settings, session_factory)
    started = time.monotonic()
    for index, target in enumerate(job.targets):
        reporter.log(f"evaluating model {target.model.id} on the {job.params['split']} split")
        try:
            outcome = _evaluate(job, target, settings=settings, reporter=reporter, index=index, started=started)
        except EvaluationCancelled:
            reporter.end(to=TaskStatus.cancelled, message=f"cancelled; {index} of {len(job.targets)} models "
                 "were evaluated and are kept")
            return
        _store(session_factory, settings, target, outcome)
        overall = outcome["metrics"]["overall"]
        reporter.log(f"model {target.model.id}: {overall}")
    reporter.end(to=TaskStatus.succeeded, message=f"evaluated {len(job.targets)} model(s)")
