"""The Label Studio ML backend: which model serves a project, and its predictions in Label Studio's format.

One model serves a project: the default model of the task its label config implies (see ``label_config``), or
the registered model a request names by its version string (``imagerec-model-<id>``, the strings
``/versions`` lists) when that model serves the same task. Every control tag that model can fill is filled:
a segmentation model fills PolygonLabels, BrushLabels (each instance's polygons filled, in Label Studio's RLE)
and RectangleLabels, a pose model KeyPointLabels (with hidden parent boxes) and RectangleLabels.

Predict answers one entry per task, in task order, as Label Studio pairs them by position. A task whose image
cannot be fetched or decoded gets an entry without ``result`` (``{"error": …}``): Label Studio skips such an
entry, so it stores no prediction for that task and asks for it again later (an empty ``result`` would be
stored as that model version's prediction, and never asked for again). Its reason is logged and counted. When
*every* task fails, the whole call fails with the first error's status and every task's message.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial

import anyio
from sqlalchemy.orm import Session

from imagerec import __version__
from imagerec.annotation.formats.labelstudio import RegionTargets, prediction
from imagerec.annotation.images import DecodedImage, decode_image
from imagerec.annotation.runtime import AnnotationRuntime
from imagerec.annotation.schemas import AnnotateParams, ImageAnnotations
from imagerec.annotation.service import annotate_arrays
from imagerec.config import Settings
from imagerec.errors import BadRequest, ImagerecError, Unprocessable
from imagerec.executor.base import Executor
from imagerec.labelstudio import connections, interactive, loop, projects
from imagerec.labelstudio.client import Connection
from imagerec.labelstudio.images import ImageFetcher, open_fetcher
from imagerec.labelstudio.label_config import (
    ControlKind,
    ControlTag,
    LabelConfig,
    keypoint_labels,
    label_map,
    parse_label_config,
)
from imagerec.labelstudio.schemas import (
    Health,
    LabelStudioTask,
    PredictRequest,
    PredictResponse,
    SetupRequest,
    SetupResponse,
    TaskFailure,
    TaskPrediction,
    TrainingAnswer,
    Versions,
    WebhookEvent,
)
from imagerec.model_versions import repository as models_repository
from imagerec.model_versions.models import ModelVersion
from imagerec.tasks.models import Task
from imagerec.vision import VisionTask

logger = logging.getLogger(__name__)

VERSIONS_LIMIT = 500
ANNOTATION_EVENTS = ("ANNOTATION_CREATED", "ANNOTATION_UPDATED")
DEFAULT_SCORE_THRESHOLD = AnnotateParams.model_fields["conf"].default  # the same default as /api/auto_annotate
REGION_FIELD = {ControlKind.rectangle: "rectangle", ControlKind.polygon: "polygon",
                ControlKind.keypoint: "keypoint", ControlKind.choices: "choices", ControlKind.brush: "brush"}


def health() -> Health:
    return Health(version=__version__)


@dataclass(frozen=True)
class Refused:
    """A setup or training request that failed: answered with its status, its reason kept on the project's row
    (so the request's transaction commits rather than roll the reason back)."""

    error: ImagerecError


def setup(session: Session, settings: Settings, *, request: SetupRequest) -> SetupResponse | Refused:
    """The version string of the model that serves this project (see ``projects``); 403 for an unregistered
    Label Studio, a ``Refused`` (kept on the project's row) when no model can serve it."""
    connection = connections.for_setup(session, settings, hostname=request.hostname)
    url, number = connection.url if connection is not None else "", projects.project_number(request.project)
    extra = request.extra_params if isinstance(request.extra_params, dict) else None
    config = None
    try:
        config = parse_label_config(request.label_config)
        row = projects.for_setup(session, url=url, project=number) if number is not None else None
        model = projects.choose(session, row=row, config=config, requested_version=request.model_version,
                                extra_params=extra)
        if config.controls_for(config.task):  # labels naming none of the model's classes fail here, visibly
            control_targets(config, model)
    except ImagerecError as error:
        if number is not None:
            projects.record_problem(session, url=url, project=number, task=config and config.task.value,
                                    error=error, extra_params=extra)
        return Refused(error)
    if number is not None:
        projects.bind(session, url=url, project=number, config=config, label_config=request.label_config,
                      model=model, extra_params=extra)
    return SetupResponse(model_version=projects.model_version(model))


def webhook(session: Session, *, settings: Settings, executor: Executor,
            event: WebhookEvent) -> TrainingAnswer | Refused:
    if event.action == "START_TRAINING":
        return start_training(session, settings=settings, executor=executor, project=event.project,
                              reason="Start training in Label Studio")
    if event.action in ANNOTATION_EVENTS:
        try:
            row = loop.project_of(session, event.project)
        except ImagerecError:
            return TrainingAnswer(status="ignored", detail="not a project set up with imagerec")
        try:
            started = loop.count_annotation(session, settings=settings, executor=executor, row=row)
        except ImagerecError as error:
            return Refused(error)
        if started is None:
            return TrainingAnswer(status="counted", detail=f"{row.annotations_since_training} annotation events "
                                                           "counted since the last training")
        return _answer(*started)
    return TrainingAnswer(status="ignored", detail=f"{event.action[:100]} events are not acted on")


def start_training(session: Session, *, settings: Settings, executor: Executor, project: object,
                   reason: str) -> TrainingAnswer | Refused:
    try:
        row = loop.project_of(session, project)
        return _answer(*loop.start(session, settings=settings, executor=executor, row=row, reason=reason))
    except ImagerecError as error:
        return Refused(error)


def _answer(task: Task, new: bool) -> TrainingAnswer:
    if new:
        return TrainingAnswer(status="queued", task_id=task.id, detail=f"task {task.id} trains from the project's "
                              "annotations: GET /api/tasks/{id} follows it")
    return TrainingAnswer(status="running", task_id=task.id, detail=f"task {task.id} is already {task.status} for "
                          "this project")


def versions(session: Session, *, task: VisionTask | None, project: int | None) -> Versions:
    """Every live model's version string; for a project set up before, only those that can fill its config."""
    row = projects.find(session, project=project, url=None) if project is not None else None
    task = VisionTask(row.task) if row is not None else task
    models = models_repository.list_models(session, task=task, limit=VERSIONS_LIMIT, offset=0)
    if row is not None and row.label_config:
        config = parse_label_config(row.label_config)
        models = [model for model in models if _fills(config, model)]
    return Versions(versions=[projects.model_version(model) for model in models])


def _fills(config: LabelConfig, model: ModelVersion) -> bool:
    try:
        control_targets(config, model)
    except ImagerecError:
        return False
    return True


@dataclass(frozen=True)
class ControlTarget:
    """One control tag to fill, with its labels mapped onto the model's classes."""

    control: ControlTag
    label_map: dict[str, str]
    keypoint_labels: dict[int, str] | None
    score_threshold: float


@dataclass(frozen=True)
class PredictionPlan:
    """Everything predict needs from the database, read in one short session before any slow work starts."""

    tasks: list[LabelStudioTask]
    config: LabelConfig
    model: ModelVersion  # detached once the session closes; only its loaded attributes are read
    version: str
    targets: list[ControlTarget]
    params: AnnotateParams
    image_key: str  # the task data key holding the image the targets are drawn on
    connection: Connection | None  # the project's Label Studio: where relative image references are fetched
    context: object = None  # interactive pre-annotation: what the user clicked or drew (see ``interactive``)


def plan_prediction(session: Session, settings: Settings, *, request: PredictRequest) -> PredictionPlan:
    config = parse_label_config(request.label_config)
    row = projects.for_predict(session, project=request.project, label_config=request.label_config)
    model = projects.choose(session, row=row, config=config, requested_version=request.model_version)
    targets = control_targets(config, model)
    image_key = config.image_for(targets[0].control).data_key
    targets = [t for t in targets if config.image_for(t.control).data_key == image_key]  # one image per task
    connection = (connections.for_url(session, settings, row.labelstudio_url) if row is not None
                  and row.labelstudio_url else connections.sole(session, settings))
    return PredictionPlan(tasks=request.tasks, config=config, model=model, version=projects.model_version(model),
                          targets=targets, params=annotate_params(targets), image_key=image_key,
                          connection=connection, context=(request.params or {}).get("context"))


def control_targets(config: LabelConfig, model: ModelVersion) -> list[ControlTarget]:
    """The controls ``model`` fills; 422 when no label of any of them names one of the model's classes."""
    targets = [_target(control, list(model.class_names)) for control in config.controls_for(VisionTask(model.task))]
    if not any(target.label_map for target in targets):
        labels = sorted({label.value for target in targets for label in target.control.labels})
        raise Unprocessable(
            f"no label of the label config ({', '.join(labels) or 'none'}) names a class of "
            f"{projects.model_version(model)} "
            f"({', '.join(model.class_names)}): name labels after the classes, or list the classes a label stands "
            'for in predicted_values="a,b"'
        )
    return targets


def _target(control: ControlTag, class_names: list[str]) -> ControlTarget:
    is_keypoint = control.kind is ControlKind.keypoint
    return ControlTarget(
        control=control,
        label_map=label_map(control, class_names),
        keypoint_labels=keypoint_labels(control) if is_keypoint else None,
        score_threshold=control.score_threshold if control.score_threshold is not None else DEFAULT_SCORE_THRESHOLD,
    )


def annotate_params(targets: list[ControlTarget]) -> AnnotateParams:
    """Inference keeps what the weakest threshold and every mapped class need; each control filters further."""
    point_thresholds = [t.control.point_threshold for t in targets if t.control.point_threshold is not None]
    return AnnotateParams(
        conf=min(t.score_threshold for t in targets),
        classes=sorted({name for t in targets for name in t.label_map}),
        keypoint_conf=min(point_thresholds, default=0.0),
    )


# -- predict -----------------------------------------------------------------------------------------------
async def predict(*, plan: PredictionPlan, runtime: AnnotationRuntime) -> PredictResponse:
    """One prediction per task, in task order (see the module docstring for failed tasks)."""
    predictions: list[TaskPrediction | TaskFailure] = []
    failures: list[tuple[object, ImagerecError]] = []
    async with open_fetcher(runtime.settings, plan.connection) as fetcher:
        for task in plan.tasks:
            try:
                image = await _task_image(fetcher, task, plan=plan, settings=runtime.settings)
            except ImagerecError as error:
                logger.warning("Label Studio task %s: no prediction: %s", task.id, error.message)
                failures.append((task.id, error))
                predictions.append(TaskFailure(error=error.message))
                continue
            [annotations] = await annotate_arrays(runtime=runtime, model=plan.model, images=[image],
                                                  params=plan.params)
            # in a worker thread: a brush mask is encoded over the whole image
            predictions.append(await anyio.to_thread.run_sync(task_prediction, plan, annotations))
    if plan.tasks and len(failures) == len(plan.tasks):
        raise NoTaskPredicted(failures)
    if failures:
        logger.warning("Label Studio predict: %d of %d tasks left without a prediction (Label Studio asks again "
                       "for them later)", len(failures), len(plan.tasks))
    return PredictResponse(results=predictions, model_version=plan.version)


async def _task_image(fetcher: ImageFetcher, task: LabelStudioTask, *, plan: PredictionPlan,
                      settings: Settings) -> DecodedImage:
    if plan.image_key not in task.data:
        raise BadRequest(f"task {task.id} has no '{plan.image_key}' in its data (the label config's "
                         f"<Image value=\"${plan.image_key}\">)")
    fetched = await fetcher.fetch(task.data[plan.image_key])
    decode = partial(decode_image, fetched.data, file_name=fetched.file_name, settings=settings)
    return await anyio.to_thread.run_sync(decode)


def task_prediction(plan: PredictionPlan, annotations: ImageAnnotations) -> TaskPrediction:
    """Each control's regions, from its own label map and threshold, in one prediction."""
    annotations = interactive.focus(annotations, plan.context)
    regions, scores = [], []
    for target in plan.targets:
        part = prediction(
            annotations,
            model_version=plan.version,
            targets=_region_targets(target.control),
            label_map=target.label_map,
            keypoint_labels=target.keypoint_labels,
            score_threshold=target.score_threshold,
        )
        regions.extend(part["result"])
        if part["result"]:
            scores.append(part["score"])
    score = sum(scores) / len(scores) if scores else 0.0  # each part's score is its mean confidence
    return TaskPrediction(result=regions, score=score, model_version=plan.version)


def _region_targets(control: ControlTag) -> RegionTargets:
    """Only this control's kind: RegionTargets' defaults name every kind."""
    none = {field: None for field in REGION_FIELD.values()}
    return RegionTargets(**none | {REGION_FIELD[control.kind]: (control.name, control.to_name)})


class NoTaskPredicted(ImagerecError):
    """Not one task of a predict call could be read: the first failure's status, every task's message."""

    def __init__(self, failures: list[tuple[object, ImagerecError]]) -> None:
        first = failures[0][1]
        details = [{"task": task_id, "status_code": e.status_code, "message": e.message} for task_id, e in failures]
        super().__init__(f"no task could be predicted: {first.message}", details=details)
        self.status_code = first.status_code
