"""The shared vocabulary of auto-annotation: parameters in, per-image annotations out.

Every output format (json, coco, yolo, labelstudio), the HTTP endpoint, the batch pre-labelling job and the
Label Studio backend work from ``ImageAnnotations``. Pixel coordinates are in the image as a viewer shows it
(EXIF orientation applied), origin top-left.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field, StrictInt

from imagerec.fields import Number, RequestModel


class Shape(StrEnum):
    bbox = "bbox"
    polygon = "polygon"
    keypoints = "keypoints"
    label = "label"  # image-level class labels (classification)


class OutputFormat(StrEnum):
    json = "json"
    coco = "coco"
    yolo = "yolo"
    labelstudio = "labelstudio"


class AnnotateParams(RequestModel):
    """Inference and output options; the same for the endpoint, batch jobs and Label Studio."""

    conf: Number = Field(0.25, ge=0.0, le=1.0, description="Minimum detection score")
    iou: Number = Field(0.7, ge=0.0, le=1.0, description="NMS IoU threshold")
    imgsz: StrictInt | None = Field(None, ge=32, le=4096, multiple_of=32, description="Default: the model's own")
    max_det: StrictInt = Field(300, ge=1, le=3000)
    classes: list[str] | None = Field(None, max_length=1000, description="Class names or ids to keep; default all")
    shapes: list[Shape] | None = Field(None, description="Default: everything the model can produce")
    polygon_tolerance: Number = Field(1.0, ge=0.0, le=100.0, description="Polygon simplification (pixels)")
    keypoint_conf: Number = Field(0.0, ge=0.0, le=1.0, description="Keypoints below this confidence are dropped")
    top_k: StrictInt = Field(5, ge=1, le=100, description="Labels returned per image for classification")


class Box(BaseModel):
    x1: float
    y1: float
    x2: float
    y2: float
    cx: float = Field(description="Normalised 0..1 centre x")
    cy: float
    w: float = Field(description="Normalised 0..1 width")
    h: float


class Keypoint(BaseModel):
    index: int
    name: str | None = None
    x: float
    y: float
    conf: float | None = None


class Instance(BaseModel):
    class_id: int
    class_name: str
    score: float
    box: Box | None = None
    polygons: list[list[list[float]]] | None = Field(
        None, description="One polygon per mask part: [[x, y], …] in pixels, simplified"
    )
    keypoints: list[Keypoint] | None = None


class Label(BaseModel):
    class_id: int
    class_name: str
    score: float


class ImageAnnotations(BaseModel):
    file_name: str
    width: int
    height: int
    instances: list[Instance] = Field(default_factory=list)
    labels: list[Label] = Field(default_factory=list, description="Classification: top-k labels")


class FileError(BaseModel):
    file_name: str
    status_code: int
    message: str


class ModelSummary(BaseModel):
    id: int
    name: str
    task: str
    class_names: list[str]


class AnnotateResponse(BaseModel):
    model: ModelSummary
    images: list[ImageAnnotations]
    errors: list[FileError] = Field(default_factory=list, description="Files that could not be annotated")
