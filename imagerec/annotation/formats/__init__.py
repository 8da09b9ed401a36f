"""Output formats of auto-annotation: one renderer per ``OutputFormat``, picked from ``RENDERERS``.

A renderer turns the per-image annotations of one request into the HTTP response body of its format; the
modules also expose the pieces other features reuse (``coco.coco_document``, ``yolo_text.yolo_label_text``,
``labelstudio.prediction``).
"""

from __future__ import annotations

from typing import Protocol

from starlette.responses import Response

from imagerec.annotation.formats import coco, labelstudio, native, yolo_text
from imagerec.annotation.schemas import FileError, ImageAnnotations, ModelSummary, OutputFormat


class Renderer(Protocol):
    def __call__(self, *, model: ModelSummary, images: list[ImageAnnotations],
                 errors: list[FileError]) -> Response: ...


RENDERERS: dict[OutputFormat, Renderer] = {
    OutputFormat.json: native.render,
    OutputFormat.coco: coco.render,
    OutputFormat.yolo: yolo_text.render,
    OutputFormat.labelstudio: labelstudio.render,
}


def render(fmt: OutputFormat, *, model: ModelSummary, images: list[ImageAnnotations],
           errors: list[FileError]) -> Response:
    return RENDERERS[OutputFormat(fmt)](model=model, images=images, errors=errors)
