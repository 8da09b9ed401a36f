"""``format=json``: the ``AnnotateResponse`` model itself."""

from __future__ import annotations

from starlette.responses import Response

from imagerec.annotation.schemas import AnnotateResponse, FileError, ImageAnnotations, ModelSummary


def render(*, model: ModelSummary, images: list[ImageAnnotations], errors: list[FileError]) -> Response:
    body = AnnotateResponse(model=model, images=images, errors=errors)
    return Response(body.model_dump_json(), media_type="application/json")
