"""``POST /api/auto_annotate``: multipart images in, annotations out (json, coco, yolo or labelstudio).

HTTP only: the form is read into ``AnnotateParams`` (one place for the limits) and the uploads handed to the
service, which reads each file only when its turn comes. A form field the route does not declare is a 422.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError

from imagerec.annotation import service
from imagerec.annotation.formats import render
from imagerec.annotation.limiter import Overloaded
from imagerec.annotation.schemas import AnnotateParams, AnnotateResponse, OutputFormat
from imagerec.deps import AnnotationRuntimeDep, SessionFactoryDep
from imagerec.fields import MAX_DB_INT
from imagerec.forms import OnlyDeclaredFormFields
from imagerec.vision import VisionTask

router = APIRouter()

FILE_ERROR = {"description": "The one file sent (or every file) is corrupt (400), too large (413) or no image (415)"}


def _listed(values: list[str] | None) -> list[str] | None:
    """Comma-separated, repeated, or both: ``shapes=bbox,polygon`` = ``shapes=bbox&shapes=polygon``."""
    items = [part.strip() for value in values or [] for part in value.split(",") if part.strip()]
    return items or None


async def annotate_params(  # async: validation only, no worker-thread round trip
    conf: Annotated[float | None, Form(description="Minimum score, 0..1 (default 0.25)")] = None,
    iou: Annotated[float | None, Form(description="NMS IoU threshold, 0..1 (default 0.7)")] = None,
    imgsz: Annotated[int | None, Form(description="Inference size, a multiple of 32 (default: the model's)")] = None,
    max_det: Annotated[int | None, Form(description="Most instances per image (default 300)")] = None,
    classes: Annotated[list[str] | None, Form(description="Class names or ids to keep (comma-separated)")] = None,
    shapes: Annotated[list[str] | None, Form(description="bbox, polygon, keypoints, label (default: all)")] = None,
    polygon_tolerance: Annotated[float | None, Form(description="Polygon simplification in pixels")] = None,
    keypoint_conf: Annotated[float | None, Form(description="Drop keypoints below this confidence")] = None,
    top_k: Annotated[int | None, Form(description="Labels per image for classification")] = None,
) -> AnnotateParams:
    given = dict(conf=conf, iou=iou, imgsz=imgsz, max_det=max_det, classes=_listed(classes), shapes=_listed(shapes),
                 polygon_tolerance=polygon_tolerance, keypoint_conf=keypoint_conf, top_k=top_k)
    try:
        return AnnotateParams(**{name: value for name, value in given.items() if value is not None})
    except ValidationError as error:  # the same 422 shape as FastAPI's own, located in the form body
        raise RequestValidationError([
            {"type": e["type"], "loc": ("body", *e["loc"]), "msg": e["msg"], "input": e.get("input")}
            for e in error.errors(include_url=False)
        ]) from None


@router.post(
    "/auto_annotate",
    response_model=None,
    summary="Annotate images with a registered model (boxes, polygons, keypoints, labels)",
    dependencies=[OnlyDeclaredFormFields],
    responses={
        200: {"model": AnnotateResponse, "description": "format=json; coco/yolo/labelstudio render the same data"},
        400: FILE_ERROR, 413: FILE_ERROR, 415: FILE_ERROR,
        404: {"description": "Unknown model, or no default model for the task"},
        429: {"description": "Busy: every inference slot and waiting place is taken; see Retry-After"},
    },
)
async def auto_annotate(
    runtime: AnnotationRuntimeDep,
    session_factory: SessionFactoryDep,
    files: Annotated[list[UploadFile], File(description="One or more images (JPEG, PNG, BMP, GIF, TIFF, WebP)")],
    params: Annotated[AnnotateParams, Depends(annotate_params)],
    model_id: Annotated[int | None, Form(ge=1, le=MAX_DB_INT,
                                         description="Default: the default model of `task`")] = None,
    task: Annotated[VisionTask | None, Form(description="Picks that task's default model when no model_id")] = None,
    # named as the form field: FastAPI 0.115 lists a Form alias under the parameter's name in OpenAPI
    format: Annotated[OutputFormat, Form(description="json, coco, yolo or labelstudio")] = OutputFormat.json,
) -> Response:
    uploads = [service.ImageUpload(file_name=service.safe_file_name(upload.filename, index=index),
                                   size=upload.size, read=upload.read) for index, upload in enumerate(files)]
    outcome = await service.annotate_uploads(runtime=runtime, session_factory=session_factory, model_id=model_id,
                                             task=task, uploads=uploads, params=params)
    return render(format, model=outcome.model, images=outcome.images, errors=outcome.errors)


async def overloaded_response(_request: Request, error: Overloaded) -> JSONResponse:
    """429 with ``Retry-After``: installed by the app next to the typed-error handler."""
    return JSONResponse({"detail": error.message}, status_code=error.status_code,
                        headers={"Retry-After": str(error.retry_after)})
