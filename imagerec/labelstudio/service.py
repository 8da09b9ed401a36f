"""The Label Studio ML backend: which model serves a project, and its predictions in Label Studio's format.

One model serves a project: the default model of the task its label config implies (see ``label_config``), or
the registered model a request names by its version string (``imagerec-model-<id>``, the strings
``/versions`` lists) when that model serves the same task. Every control tag that model can fill is filled:
a segmentation model fills PolygonLabels, BrushLabels (each instance's polygons filled, in Label Studio's RLE)
and RectangleLabels, a pose model KeyPointLabels (with hidden parent boxes) and RectangleLabels.

Predict answers one entry per task, in task order, as Label Studio pairs them by position. A task whose image
cannot be fetched or decoded gets an empty ``result`` and its error is logged; when *every* task fails, the
whole call fails with the first error's status and every task's message, so that Label Studio shows the user
why (a wrong URL or token is the common case).
"""

from __future__ import annotations

import logging
import re
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
    PredictRequest,
    PredictResponse,
    SetupRequest,
    SetupResponse,
    Task,
    TaskPrediction,
    Versions,
)
from imagerec.model_versions import repository as models_repository
from imagerec.model_versions.models import ModelVersion
from imagerec.vision import VisionTask

logger = logging.getLogger(__name__)

VERSION_PREFIX = "imagerec-model-"
VERSION_PATTERN = re.compile(rf"^{VERSION_PREFIX}(\d+)$")
VERSIONS_LIMIT = 500
DEFAULT_SCORE_THRESHOLD = AnnotateParams.model_fields["conf"].default  # the same default as /api/auto_annotate
REGION_FIELD = {ControlKind.rectangle: "rectangle", ControlKind.polygon: "polygon",
                ControlKind.keypoint: "keypoint", ControlKind.choices: "choices", ControlKind.brush: "brush"}


def model_version(model: ModelVersion) -> str:
    return f"{VERSION_PREFIX}{model.id}"


def model_id_of(version: str | None) -> int | None:
    match = VERSION_PATTERN.match(version or "")
    return int(match.group(1)) if match else None


def health() -> Health:
    return Health(version=__version__)


def setup(session: Session, *, request: SetupRequest) -> SetupResponse:
    """The version string of the model that will serve this label config (422 when there is none)."""
    config = parse_label_config(request.label_config)
    model = default_model(session, task=config.task)
    if config.controls_for(config.task):  # labels naming none of the model's classes fail here, visibly
        control_targets(config, model)
    return SetupResponse(model_version=model_version(model))


def versions(session: Session, *, task: VisionTask | None) -> Versions:
    models = models_repository.list_models(session, task=task, limit=VERSIONS_LIMIT, offset=0)
    return Versions(versions=[model_version(model) for model in models])


def default_model(session: Session, *, task: VisionTask) -> ModelVersion:
    model = models_repository.get_default(session, task=task)
    if model is None:
        raise Unprocessable(
            f"this label config needs a {task} model, and no {task} model is marked default in imagerec: "
            f"mark one with POST /api/models/{{id}}/default (GET /api/models?task={task} lists them)"
        )
    return model


def choose_model(session: Session, *, config: LabelConfig, requested_version: str | None) -> ModelVersion:
    """The model a request names, if it exists and serves the config's task; otherwise the task's default."""
    model_id = model_id_of(requested_version)
    model = models_repository.get(session, model_id) if model_id is not None else None
    if model is not None and model.task == config.task:
        return model
    return default_model(session, task=config.task)


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

    tasks: list[Task]
    config: LabelConfig
    model: ModelVersion  # detached once the session closes; only its loaded attributes are read
    version: str
    targets: list[ControlTarget]
    params: AnnotateParams
    image_key: str  # the task data key holding the image the targets are drawn on


def plan_prediction(session: Session, *, request: PredictRequest) -> PredictionPlan:
    config = parse_label_config(request.label_config)
    model = choose_model(session, config=config, requested_version=request.model_version)
    targets = control_targets(config, model)
    image_key = config.image_for(targets[0].control).data_key
    targets = [t for t in targets if config.image_for(t.control).data_key == image_key]  # one image per task
    return PredictionPlan(tasks=request.tasks, config=config, model=model, version=model_version(model),
                          targets=targets, params=annotate_params(targets), image_key=image_key)


def control_targets(config: LabelConfig, model: ModelVersion) -> list[ControlTarget]:
    """The controls ``model`` fills; 422 when no label of any of them names one of the model's classes."""
    targets = [_target(control, list(model.class_names)) for control in config.controls_for(VisionTask(model.task))]
    if not any(target.label_map for target in targets):
        labels = sorted({label.value for target in targets for label in target.control.labels})
        raise Unprocessable(
            f"no label of the label config ({', '.join(labels) or 'none'}) names a class of {model_version(model)} "
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
    predictions: list[TaskPrediction] = []
    failures: list[tuple[object, ImagerecError]] = []
    async with open_fetcher(runtime.settings) as fetcher:
        for task in plan.tasks:
            try:
                image = await _task_image(fetcher, task, plan=plan, settings=runtime.settings)
            except ImagerecError as error:
                logger.warning("Label Studio task %s: no prediction: %s", task.id, error.message)
                failures.append((task.id, error))
                predictions.append(TaskPrediction(result=[], score=None, model_version=plan.version))
                continue
            [annotations] = await annotate_arrays(runtime=runtime, model=plan.model, images=[image],
                                                  params=plan.params)
            # in a worker thread: a brush mask is encoded over the whole image
            predictions.append(await anyio.to_thread.run_sync(task_prediction, plan, annotations))
    if plan.tasks and len(failures) == len(plan.tasks):
        raise NoTaskPredicted(failures)
    return PredictResponse(results=predictions, model_version=plan.version)


async def _task_image(fetcher: ImageFetcher, task: Task, *, plan: PredictionPlan, settings: Settings) -> DecodedImage:
    if plan.image_key not in task.data:
        raise BadRequest(f"task {task.id} has no '{plan.image_key}' in its data (the label config's "
                         f"<Image value=\"${plan.image_key}\">)")
    fetched = await fetcher.fetch(task.data[plan.image_key])
    decode = partial(decode_image, fetched.data, file_name=fetched.file_name, settings=settings)
    return await anyio.to_thread.run_sync(decode)


def task_prediction(plan: PredictionPlan, annotations: ImageAnnotations) -> TaskPrediction:
    """Each control's regions, from its own label map and threshold, in one prediction."""
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
