"""The ``labelstudio_training`` child: a Label Studio project's annotations → a dataset version → a model →
measured against the project's model → kept as the project's model or set aside.

Steps, each recorded in the task's report (``loop``) as it ends, so a resumed task goes on from the first step
not done:

1. ``dataset``: the project's annotations and images are pulled (``pull``) and become the next version of the
   project's dataset (its first version the first time; the previous version is the parent; when nothing
   changed, the current version is trained on again);
2. ``training``: a training task (regular, or incremental from the project's model) on that version, queued and
   run by this child itself (``executor.inline``): it is an ordinary training task in the API, with its log,
   metrics, checkpoint and resume; a cancel of this task is passed on to it;
3. ``decision``: without a project model (or when it is the same) the new model becomes the project's model;
   otherwise both are evaluated on the version's val split (an evaluation task, run here too) and the new model
   becomes the project's model unless a class's metric fell by more than ``max_class_regression`` (the
   promotion guard's comparison); a worse model stays registered, set aside. Label Studio sees the project's
   model at its next ``/setup``. The decision is on the project's row and in this task's report.
"""

from __future__ import annotations

import threading
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from imagerec.config import Settings
from imagerec.datasets import archive, staging, versioning
from imagerec.datasets import repository as datasets_repository
from imagerec.datasets import service as datasets_service
from imagerec.datasets.formats import DatasetFormat
from imagerec.datasets.models import Dataset
from imagerec.datasets.schemas import ImportChoice
from imagerec.db import retry_busy, unit_of_work, utcnow
from imagerec.errors import ImagerecError, Unprocessable
from imagerec.evaluation import repository as evaluations_repository
from imagerec.evaluation import service as evaluation_service
from imagerec.evaluation.promotion import measured_against
from imagerec.evaluation.schemas import EvaluationRequest
from imagerec.executor import inline
from imagerec.labelstudio import connections, pull
from imagerec.labelstudio.label_config import parse_label_config
from imagerec.labelstudio.models import LabelStudioProject
from imagerec.labelstudio.schemas import LabelStudioTrainingTask
from imagerec.model_versions import repository as models_repository
from imagerec.tasks import repository as tasks_repository
from imagerec.tasks import service as tasks_service
from imagerec.tasks.models import TaskKind, TaskStatus
from imagerec.tasks.reporter import TaskReporter
from imagerec.training import service as training_service
from imagerec.training.schemas import TrainingMode
from imagerec.training.strategies import STRATEGIES

CANCEL_POLL_SECONDS = 1.0


class LoopCancelled(Exception):
    pass


class _Loop:
    def __init__(self, task_id: int, settings: Settings, factory: sessionmaker[Session]):
        self.task_id, self.settings, self.factory = task_id, settings, factory
        self.reporter = TaskReporter(task_id=task_id, session_factory=factory)
        with unit_of_work(factory) as session:
            task = tasks_repository.get(session, task_id)
            self.params = LabelStudioTrainingTask.model_validate(task.params)
            self.state: dict = dict((task.report or {}).get("loop") or {})
            self.worker, self.created_by, self.run_dir = task.worker, task.created_by, Path(task.run_dir)

    def save(self, **values) -> None:
        self.state.update(values)
        self.reporter.merge_report({"loop": self.state})

    def check_cancel(self) -> None:
        if self.reporter.cancel_requested():
            raise LoopCancelled

    def project(self, session: Session) -> LabelStudioProject:
        row = session.get(LabelStudioProject, self.params.project_row_id)
        if row is None:
            raise Unprocessable(f"Label Studio project {self.params.project} is no longer known to imagerec")
        return row

    # -- 1. dataset ----------------------------------------------------------------------------------------
    def dataset(self) -> int:
        work = self.settings.data_dir / self.run_dir / "work"
        archive.remove_tree(work)
        (work / "source").mkdir(parents=True)
        try:
            with unit_of_work(self.factory) as session:
                row = self.project(session)
                connection = connections.for_url(session, self.settings, self.params.labelstudio_url)
                parent = datasets_repository.get(session, dataset_id=row.dataset_id) if row.dataset_id else None
                model = models_repository.get(session, self.params.base_model_id) if self.params.base_model_id \
                    else None
                label_config, class_names = row.label_config, list(model.class_names) if model else []
                held = _held_names(datasets_service.files_dir(self.settings, parent), parent.task) if parent \
                    else set()
            if connection is None:
                raise Unprocessable(f"Label Studio at {self.params.labelstudio_url} is no longer registered")
            config = parse_label_config(label_config)
            image_key = config.image_for(config.controls_for(config.task)[0]).data_key
            self.reporter.log(f"pulling the annotations of Label Studio project {self.params.project}")
            summary = pull.pull(connection, settings=self.settings, project=self.params.project,
                                label_config=label_config, image_key=image_key, class_names=class_names,
                                folder=work / "source", known=held.__contains__,
                                cancelled=self.reporter.cancel_requested)
            self.reporter.log(f"pulled {summary.annotated} annotated tasks of {summary.tasks}: "
                              f"{summary.fetched} images fetched, {summary.kept} already held, "
                              f"{len(summary.failed)} left out (image not fetched)",
                              level="warning" if summary.failed else "info")
            if not summary.annotated or summary.annotated == len(summary.failed):
                raise Unprocessable(f"Label Studio project {self.params.project} has no submitted annotation "
                                    "whose image could be fetched: nothing to train on")
            dataset_id = self._register(work / "source", parent_id=parent.id if parent else None)
        except pull.PullCancelled:
            raise LoopCancelled from None
        finally:
            archive.remove_tree(work)
        self.save(dataset_id=dataset_id, pulled=summary.as_dict())
        return dataset_id

    def _register(self, source: Path, *, parent_id: int | None) -> int:
        choice = ImportChoice(format=DatasetFormat.labelstudio)

        def write() -> int:
            with unit_of_work(self.factory) as session:
                row = self.project(session)
                parent = datasets_repository.get(session, dataset_id=parent_id) if parent_id else None
                if parent is not None:
                    try:
                        dataset = versioning.create_version(session=session, settings=self.settings, parent=parent,
                                                            written=source, choice=choice, created_by=self.created_by)
                    except versioning.NothingChanged:
                        self.reporter.log(f"nothing changed since dataset {parent.id}: training on it again")
                        return parent.id
                else:
                    dataset = self._first_version(session, row, source, choice)
                row.dataset_id = dataset.id
                self.reporter.log(f"dataset {dataset.id} ({dataset.name!r} version {dataset.version}) registered")
                return dataset.id

        return retry_busy(write, what="the dataset's registration", deadline_seconds=None)

    def _first_version(self, session: Session, row: LabelStudioProject, source: Path,
                       choice: ImportChoice) -> Dataset:
        name = f"labelstudio-project-{row.project}"
        if datasets_repository.name_taken(session, name=name):
            name = f"{name}-{row.id}"
        work = source.parent / "first"
        work.mkdir()
        staged, finished = datasets_service.stage_new(self.settings, work, task=row.task, source_root=source,
                                                      link_images=False, choice=choice)
        dataset = Dataset(name=name, task=row.task, source="labelstudio", source_path=None,
                          created_by=self.created_by)
        return datasets_service.insert(session, self.settings, staged, dataset, finished)

    # -- 2. training ---------------------------------------------------------------------------------------
    def train(self) -> int:
        sub_id = self.state.get("training_task_id")
        if sub_id is None:
            sub_id = self._queue_training()
        else:
            self._resume(sub_id, kind=TaskKind.training)
        status = self._run(sub_id, kind=TaskKind.training)
        with unit_of_work(self.factory) as session:
            sub = tasks_repository.get(session, sub_id)
            model_id, error = sub.model_id, sub.error
        if status != TaskStatus.succeeded or model_id is None:
            self.check_cancel()
            raise Unprocessable(f"training task {sub_id} ended {status}" + (f": {error}" if error else "")
                                + "; resume this task to continue it")
        self.save(model_id=model_id)
        return model_id

    def _queue_training(self) -> int:
        mode = TrainingMode(self.params.mode)
        fields = {**self.params.training, "dataset_id": self.state["dataset_id"]}
        if mode == TrainingMode.incremental:
            fields["base_model_id"] = self.params.base_model_id
        request = STRATEGIES[mode].request_model.model_validate(fields)
        with unit_of_work(self.factory) as session:
            sub = training_service.start(session, settings=self.settings, executor=inline.InlineExecutor(),
                                         mode=mode, request=request, created_by=self.created_by)
            inline.claim(session, task=sub, worker=self.worker)
            sub_id = sub.id
        self.save(training_task_id=sub_id)
        self.reporter.log(f"training task {sub_id} ({mode}) started on dataset {self.state['dataset_id']}")
        return sub_id

    def _resume(self, sub_id: int, *, kind: TaskKind) -> None:
        with unit_of_work(self.factory) as session:
            sub = tasks_repository.get(session, sub_id)
            if sub.status in (TaskStatus.succeeded,):
                return
            if sub.status in (TaskStatus.queued, TaskStatus.running):
                raise Unprocessable(f"{kind} task {sub_id} is {sub.status} elsewhere: wait for it, then resume")
            sub = tasks_service.resume(session, settings=self.settings, executor=inline.InlineExecutor(), task=sub)
            inline.claim(session, task=sub, worker=self.worker)
        self.reporter.log(f"{kind} task {sub_id} resumed here")

    def _run(self, sub_id: int, *, kind: TaskKind) -> str:
        with unit_of_work(self.factory) as session:
            if tasks_repository.get(session, sub_id).status == TaskStatus.succeeded:
                return TaskStatus.succeeded
        done = threading.Event()
        watcher = threading.Thread(target=self._pass_cancel_on, args=(sub_id, done), daemon=True)
        watcher.start()
        try:
            return inline.run(sub_id, kind=kind, settings=self.settings, session_factory=self.factory)
        finally:
            done.set()
            watcher.join(timeout=5)

    def _pass_cancel_on(self, sub_id: int, done: threading.Event) -> None:
        while not done.wait(CANCEL_POLL_SECONDS):
            if self.reporter.cancel_requested():
                with unit_of_work(self.factory) as session:
                    tasks_repository.request_cancel(session, task_id=sub_id)
                return

    # -- 3. decision ---------------------------------------------------------------------------------------
    def decide(self, model_id: int) -> dict:
        with unit_of_work(self.factory) as session:
            row = self.project(session)
            current = models_repository.get(session, row.model_id) if row.model_id is not None else None
            current_id = current.id if current is not None and current.task == row.task else None
        if current_id is None or current_id == model_id:
            decision = {"model_id": model_id, "promoted": True, "reason": "the project had no model to compare with"}
        else:
            decision = self._compare(model_id, current_id)
        return self._record(decision)

    def _compare(self, model_id: int, current_id: int) -> dict:
        sub_id = self.state.get("evaluation_task_id")
        if sub_id is None:
            request = EvaluationRequest(model_ids=[current_id, model_id], dataset_id=self.state["dataset_id"],
                                        split="val")
            with unit_of_work(self.factory) as session:
                evaluations = evaluation_service.start(session, settings=self.settings,
                                                       executor=inline.InlineExecutor(), request=request,
                                                       created_by=self.created_by, source="labelstudio")
                sub = tasks_repository.get(session, evaluations[0].task_id)
                inline.claim(session, task=sub, worker=self.worker)
                sub_id = sub.id
            self.save(evaluation_task_id=sub_id)
            self.reporter.log(f"evaluation task {sub_id}: model {model_id} against the project's model "
                              f"{current_id} on the val split of dataset {self.state['dataset_id']}")
        else:
            self._resume(sub_id, kind=TaskKind.evaluation)
        status = self._run(sub_id, kind=TaskKind.evaluation)
        if status != TaskStatus.succeeded:
            self.check_cancel()
            raise Unprocessable(f"evaluation task {sub_id} ended {status}; model {model_id} is registered but was "
                                "not compared: resume this task to compare it")
        with unit_of_work(self.factory) as session:
            found = {e.model_id: e for e in evaluations_repository.of_task(session, task_id=sub_id)}
            comparison = measured_against(session, reference=found[current_id], candidate=found[model_id],
                                          metric=self.params.metric, threshold=self.params.max_class_regression)
        regressed = comparison["regressed_classes"]
        names = ", ".join(f"{item['class']} ({item['delta']:+.3f})" for item in regressed)
        return {"model_id": model_id, "promoted": not regressed, "against_model_id": current_id,
                "metric": self.params.metric, "max_class_regression": self.params.max_class_regression,
                "regressed_classes": regressed, "evaluation_task_id": sub_id,
                "reason": f"worse than model {current_id} on {names}: kept aside" if regressed else
                f"no class fell by more than {self.params.max_class_regression} against model {current_id}"}

    def _record(self, decision: dict) -> dict:
        decision = {**decision, "task_id": self.task_id, "dataset_id": self.state["dataset_id"],
                    "decided_at": utcnow().isoformat()}

        def write() -> None:
            with unit_of_work(self.factory) as session:
                row = self.project(session)
                if decision["promoted"]:
                    row.model_id = decision["model_id"]
                row.decision, row.updated_at = decision, utcnow()
                moved = tasks_repository.transition(session, task_id=self.task_id, from_=[TaskStatus.running],
                                                    to=TaskStatus.succeeded, progress=1.0,
                                                    report={"loop": {**self.state, "decision": decision}})
                if moved:
                    tasks_repository.append_log(session, task_id=self.task_id, message=(
                        f"model {decision['model_id']} is now the project's model" if decision["promoted"]
                        else f"model {decision['model_id']} set aside: {decision['reason']}"))

        retry_busy(write, what="the decision", deadline_seconds=None)
        return decision


def _held_names(files_dir: Path, task: str) -> set[str]:
    return {name.rpartition("/")[2] for _split, name in staging.image_names(files_dir, task=task)}


def run(*, task_id: int, settings: Settings, session_factory: sessionmaker[Session]) -> None:
    loop = _Loop(task_id, settings, session_factory)
    try:
        loop.check_cancel()
        if "dataset_id" not in loop.state:
            loop.dataset()
        loop.check_cancel()
        model_id = loop.state.get("model_id") or loop.train()
        loop.check_cancel()
        loop.decide(model_id)
    except LoopCancelled:
        loop.reporter.end(to=TaskStatus.cancelled, message="cancelled" + (
            f": model {loop.state['model_id']} is registered" if loop.state.get("model_id") else ""))
    except ImagerecError as error:
        loop.reporter.end(to=TaskStatus.failed, message=f"failed: {error.message}", error=error.message)
