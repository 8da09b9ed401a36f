"""Where a training starts: an architecture YAML, admin-supplied pretrained weights, or a registered model."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from imagerec.training.context import RunContext
from imagerec.vision import VisionTask

_YAML_SUFFIX = {
    VisionTask.detect: "",
    VisionTask.segment: "-seg",
    VisionTask.classify: "-cls",
    VisionTask.pose: "-pose",
}


@dataclass(frozen=True)
class StartingPoint:
    source: str  # what YOLO(...) loads: a packaged YAML name or a .pt path the server trusts
    architecture: str
    parent_model_id: int | None


def architecture_yaml(architecture: str, task: str) -> str:
    return f"{architecture}{_YAML_SUFFIX[VisionTask(task)]}.yaml"


def architecture_of(weights_name: str) -> str:
    """yolov8n-seg.pt → yolov8n: the architecture a weights file name announces (the file may disagree)."""
    stem = Path(weights_name).stem
    for suffix in ("-seg", "-cls", "-pose"):
        stem = stem.removesuffix(suffix)
    return stem


def resolve(ctx: RunContext) -> StartingPoint:
    params = ctx.params
    if params.get("architecture"):
        return StartingPoint(architecture_yaml(params["architecture"], ctx.task), params["architecture"], None)
    if params.get("pretrained_weights"):
        path = ctx.settings.pretrained_dir / params["pretrained_weights"]
        return StartingPoint(str(path), architecture_of(path.name), None)
    base = ctx.base_model
    return StartingPoint(str(base.weights_path), base.architecture, base.id)
