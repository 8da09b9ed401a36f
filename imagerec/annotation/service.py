"""Auto-annotation in the API process: pick the model, decode each image safely, predict, describe.

``annotate_uploads`` serves ``POST /api/auto_annotate``; ``annotate_arrays`` serves callers that decoded their
images already (the Label Studio backend). Both hold one slot of the runtime's limiter for the whole request
(decoding included: a decoded image can be hundreds of MB) and go through its model cache. Images of a request
are handled one at a time, so at most one decoded image per request is in memory.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from pathlib import PurePosixPath
from typing import Any

import anyio
from sqlalchemy.orm import Session, sessionmaker

from imagerec.annotation.images import DecodedImage, check_file_size, decode_image
from imagerec.annotation.model_cache import LoadedModel
from imagerec.annotation.predictions import check_shapes, predict_kwargs, resolve_classes, to_annotations
from imagerec.annotation.runtime import AnnotationRuntime
from imagerec.annotation.schemas import AnnotateParams, FileError, ImageAnnotations, ModelSummary, Shape
from imagerec.config import Settings
from imagerec.db import read_session
from imagerec.errors import BadRequest, ImagerecError, NotFound, PayloadTooLarge, Unprocessable, UnsupportedMedia
from imagerec.model_versions import repository as models_repository
from imagerec.model_versions import service as models_service
from imagerec.model_versions.models import ModelVersion
from imagerec.vision import VisionTask

# Errors that belong to one file of a batch; anything else fails the whole request.
FILE_ERRORS = {error.status_code: error for error in (BadRequest, PayloadTooLarge, UnsupportedMedia)}
# The one task that produces each shape; ``bbox`` alone is served by a detect model.
TASK_OF_SHAPE = {Shape.polygon: VisionTask.segment, Shape.keypoints: VisionTask.pose, Shape.label: VisionTask.classify}


@dataclass(frozen=True)
class ImageUpload:
    """One uploaded file, read only when its turn comes (``size`` as declared, when known)."""

    file_name: str
    size: int | None
    read: Callable[[], Awaitable[bytes]]


@dataclass(frozen=True)
class AnnotateOutcome:
    model: ModelSummary
    images: list[ImageAnnotations]
    errors: list[FileError]


def safe_file_name(name: str | None, *, index: int) -> str:
    """The base name of an upload (no folders), or ``file-N`` when it has none."""
    base = PurePosixPath((name or "").replace("\\", "/")).name.strip()
    return base[:255] if base not in ("", ".", "..") else f"file-{index + 1}"


def check_file_count(*, count: int, settings: Settings) -> None:
    if count > settings.annotate_max_files:
        raise PayloadTooLarge(f"{count} files sent; at most {settings.annotate_max_files} per request")


def infer_task(*, shapes: list[Shape] | None) -> VisionTask:
    """The task implied by the requested shapes, when exactly one task fits."""
    if not shapes:
        raise Unprocessable("give model_id, task or shapes: without them the model to use is unknown")
    tasks = {TASK_OF_SHAPE[shape] for shape in shapes if shape in TASK_OF_SHAPE}
    if len(tasks) > 1:
        wanted = ", ".join(sorted(tasks))
        raise Unprocessable(f"shapes {[str(s) for s in shapes]} need several tasks ({wanted}): give model_id or task")
    return tasks.pop() if tasks else VisionTask.detect


async def find_model(*, session_factory: sessionmaker[Session], model_id: int | None, task: VisionTask | None,
                     shapes: list[Shape] | None) -> ModelVersion:
    """The requested model, or the default model of the task given or implied (in a worker thread)."""
    if model_id is None and task is None:
        task = infer_task(shapes=shapes)
    lookup = partial(_find_model, session_factory=session_factory, model_id=model_id, task=task)
    return await anyio.to_thread.run_sync(lookup)


def _find_model(*, session_factory: sessionmaker[Session], model_id: int | None,
                task: VisionTask | None) -> ModelVersion:
    # a read session: a training child holding the write lock must not hold up annotation
    with read_session(session_factory) as session:
        if model_id is not None:
            model = models_service.get_or_404(session, model_id=model_id)
            if task is not None and model.task != task:
                raise Unprocessable(f"model {model.id} is a {model.task} model, not {task}")
            return model
        model = models_repository.get_default(session, task=task)
        if model is None:
            raise NotFound(f"no default {task} model: give model_id, or set one with POST /api/models/{{id}}/default")
        return model


def check_params(*, model: ModelVersion, params: AnnotateParams) -> None:
    """Refuse shapes the model cannot produce and classes it does not know, before any image is read."""
    check_shapes(params.shapes, model.task)
    resolve_classes(params.classes, dict(enumerate(model.class_names)))


def model_summary(model: ModelVersion) -> ModelSummary:
    return ModelSummary(id=model.id, name=model.name, task=model.task, class_names=list(model.class_names))


async def annotate_uploads(*, runtime: AnnotationRuntime, session_factory: sessionmaker[Session],
                           model_id: int | None, task: VisionTask | None, uploads: list[ImageUpload],
                           params: AnnotateParams) -> AnnotateOutcome:
    """Pick the model, then annotate every good file; bad ones are reported per file, and when all are bad the
    first file's error is raised. Everything after the file count, the model lookup included, holds a slot:
    a flood is refused before it reaches the database."""
    check_file_count(count=len(uploads), settings=runtime.settings)
    async with runtime.limiter.slot():
        model, first = await _model_and_first_image(session_factory=session_factory, model_id=model_id, task=task,
                                                    params=params, upload=uploads[0], settings=runtime.settings)
        check_params(model=model, params=params)
        annotator = _Annotator(runtime=runtime, model=model, params=params)
        images, errors = [], []
        for index, upload in enumerate(uploads):
            decoded = first if index == 0 else await _decoded(upload, settings=runtime.settings)
            if isinstance(decoded, FileError):
                errors.append(decoded)
            else:
                images.append(await annotator.annotate(decoded))
    if not images:
        raise _all_failed(errors)
    return AnnotateOutcome(model=model_summary(model), images=images, errors=errors)


async def annotate_arrays(*, runtime: AnnotationRuntime, model: ModelVersion, images: list[DecodedImage],
                          params: AnnotateParams) -> list[ImageAnnotations]:
    """Annotate images decoded by ``decode_image``, in order, under the same limits as the endpoint."""
    async with runtime.limiter.slot():
        annotator = _Annotator(runtime=runtime, model=model, params=params)
        return [await annotator.annotate(image) for image in images]


async def _model_and_first_image(*, session_factory: sessionmaker[Session], model_id: int | None,
                                 task: VisionTask | None, params: AnnotateParams, upload: ImageUpload,
                                 settings: Settings) -> tuple[ModelVersion, DecodedImage | FileError]:
    """The model lookup (database) and the first image's decoding, side by side in two worker threads: the
    lookup then costs no latency. Lookup errors are raised after the decoding settled."""
    first: list[DecodedImage | FileError] = []
    lookup: list[ModelVersion | ImagerecError] = []

    async def decode_first() -> None:
        first.append(await _decoded(upload, settings=settings))

    async with anyio.create_task_group() as group:
        group.start_soon(decode_first)
        try:
            lookup.append(await find_model(session_factory=session_factory, model_id=model_id, task=task,
                                           shapes=params.shapes))
        except ImagerecError as error:  # raised here, a task group would wrap it in an ExceptionGroup
            lookup.append(error)
    if isinstance(lookup[0], ImagerecError):
        raise lookup[0]
    return lookup[0], first[0]


async def _decoded(upload: ImageUpload, *, settings: Settings) -> DecodedImage | FileError:
    """The upload decoded, or the reason it cannot be (a file error, reported for that file alone)."""
    try:
        if upload.size is not None:
            check_file_size(file_name=upload.file_name, size=upload.size, settings=settings)  # before reading
        data = await upload.read()
        return await anyio.to_thread.run_sync(partial(decode_image, data, file_name=upload.file_name,
                                                      settings=settings))
    except ImagerecError as error:
        if error.status_code not in FILE_ERRORS:
            raise
        return FileError(file_name=upload.file_name, status_code=error.status_code, message=error.message)


def _all_failed(errors: list[FileError]) -> ImagerecError:
    first = errors[0]
    error_class = FILE_ERRORS[first.status_code]
    message = first.message if len(errors) == 1 else f"no file could be annotated; first: {first.message}"
    return error_class(message, details=[error.model_dump() for error in errors])


class _Annotator:
    """One request's model and predict arguments; the model is loaded (or found cached) on the first image."""

    def __init__(self, *, runtime: AnnotationRuntime, model: ModelVersion, params: AnnotateParams) -> None:
        self.runtime = runtime
        self.model = model
        self.params = params
        self._loaded: LoadedModel | None = None
        self._kwargs: dict[str, Any] = {}

    async def annotate(self, image: DecodedImage) -> ImageAnnotations:
        loaded = await self._model()
        result = await self.runtime.cache.predict(loaded, image.array, self._kwargs)
        # outside the model's lock: the next request's predict need not wait for this one's polygons
        describe = partial(to_annotations, result, file_name=image.file_name, params=self.params,
                           names=loaded.names, kpt_names=_first_kpt_names(loaded.kpt_names))
        return await anyio.to_thread.run_sync(describe)

    async def _model(self) -> LoadedModel:
        if self._loaded is None:
            weights_path = models_service.weights_file(self.runtime.settings, self.model)
            self._loaded = await self.runtime.cache.get(model_id=self.model.id, weights_path=weights_path)
            # the class filter runs inside NMS, so max_det counts only the wanted classes
            self._kwargs = predict_kwargs(self.params, default_imgsz=self.model.imgsz, names=self._loaded.names)
        return self._loaded


def _first_kpt_names(kpt_names: Any) -> list[str] | None:
    """Ultralytics keeps keypoint names per class ({0: [...]}); pose models here have one keypoint layout."""
    if isinstance(kpt_names, dict):
        kpt_names = next(iter(kpt_names.values()), None)
    return list(kpt_names) if kpt_names else None
