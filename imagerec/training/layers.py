"""Layer groups of a YOLO model, read from its own YAML: backbone, neck and head.

Ultralytics numbers a model's layers in YAML order, the ``backbone`` section first and then the ``head`` section,
whose last entry is the prediction layer (Detect, Segment, Pose or Classify); parameters are named
``model.<index>.…`` after these numbers, which is how freezing finds them. The groups:

- backbone: the ``backbone`` section (10 layers in yolov8.yaml, 9 in yolov8-cls.yaml: never assume a number);
- neck: the ``head`` section except its last layer (the FPN/PAN of detect, segment and pose models). A classify
  model's head section is its Classify layer alone, so its neck is empty and "backbone+neck" freezes the backbone;
- head: the last layer.

"backbone+neck" and "all-but-head" therefore name the same layers for every YOLOv8 model; both are accepted
because clients ask in either vocabulary.

The API side reads the architecture YAML shipped with the installed Ultralytics as text (no torch import); the
training child reads the loaded model's ``yaml``. Both go through ``LayerGroups.from_model_yaml``.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from imagerec.training.starting_point import architecture_yaml

# Ultralytics' own rule (nn/tasks.py, yaml_model_load): "yolov8n-seg" is the n scale of "yolov8-seg.yaml".
_SCALE = re.compile(r"(\d+)([nslmx])(.+)?$")
_PARAM_LAYER = re.compile(r"model\.(\d+)\.")


class ScheduleError(ValueError):
    """A freeze schedule that does not fit the model (the API answers 422; the child fails the task)."""


@dataclass(frozen=True)
class LayerGroups:
    backbone: int  # layers 0 .. backbone-1
    count: int  # layers in all; the last one is the head

    @classmethod
    def from_model_yaml(cls, cfg: Mapping) -> LayerGroups:
        backbone, head = len(cfg.get("backbone") or ()), len(cfg.get("head") or ())
        if head < 1:
            raise ScheduleError("the model's YAML has no head section; its layers cannot be grouped")
        return cls(backbone=backbone, count=backbone + head)

    @property
    def head(self) -> int:
        return self.count - 1

    @property
    def neck(self) -> range:
        return range(self.backbone, self.head)

    def named(self, group: str) -> range:
        if group == "backbone":
            return range(self.backbone)
        if group in ("backbone+neck", "all-but-head"):
            return range(self.head)
        if group == "none":
            return range(0)
        raise ScheduleError(f"unknown layer group '{group}'")

    def describe(self) -> dict:
        return {"layers": self.count, "backbone": span(range(self.backbone)), "neck": span(self.neck),
                "head": str(self.head)}


def frozen_layers(spec: str | int | list[int], groups: LayerGroups) -> tuple[int, ...]:
    """The layer indices ``spec`` freezes; refuses indices the model lacks and specs that freeze every layer."""
    if isinstance(spec, str):
        layers = set(groups.named(spec))
    elif isinstance(spec, int):
        if spec > groups.count:
            raise ScheduleError(f"freeze {spec} asks for the first {spec} layers but the model has "
                                f"{groups.count} (0-{groups.head})")
        layers = set(range(spec))
    else:
        missing = sorted(i for i in set(spec) if i >= groups.count)
        if missing:
            raise ScheduleError(f"layer index {', '.join(map(str, missing))} out of range: the model has "
                                f"{groups.count} layers (0-{groups.head})")
        layers = set(spec)
    if len(layers) == groups.count:
        raise ScheduleError(f"freezing {_spec_text(spec)} freezes every layer of the model (0-{groups.head}), "
                            f"leaving no trainable parameter: keep at least the head (layer {groups.head}) trainable")
    return tuple(sorted(layers))


def _spec_text(spec: str | int | list[int]) -> str:
    if isinstance(spec, str):
        return f"'{spec}'"
    return f"the first {spec} layers" if isinstance(spec, int) else f"layers {span(spec)}"


def layer_of(parameter_name: str) -> int | None:
    """``model.12.cv1.conv.weight`` → 12; None for names outside the layer list."""
    match = _PARAM_LAYER.match(parameter_name)
    return int(match.group(1)) if match else None


def span(layers: Iterable[int]) -> str:
    """[0, 1, 2, 5, 7, 8] → "0-2, 5, 7-8"; "none" when empty."""
    runs: list[list[int]] = []
    for index in sorted(layers):
        if runs and index == runs[-1][-1] + 1:
            runs[-1].append(index)
        else:
            runs.append([index])
    return ", ".join(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]) for run in runs) or "none"


@lru_cache(maxsize=64)
def _package_yaml(name: str) -> dict | None:
    spec = importlib.util.find_spec("ultralytics")  # locates the package without importing it (and torch)
    for location in (spec.submodule_search_locations or []) if spec else []:
        for path in sorted((Path(location) / "cfg" / "models").glob(f"*/{name}.yaml")):
            return yaml.safe_load(path.read_text())
    return None


def package_groups(architecture: str, task: str) -> LayerGroups | None:
    """Groups of a packaged architecture ("yolov8n" for a segment dataset → yolov8-seg.yaml); None if unknown."""
    stem = Path(architecture_yaml(architecture, task)).stem
    cfg = _package_yaml(_SCALE.sub(r"\1\3", stem))
    return LayerGroups.from_model_yaml(cfg) if cfg else None
