"""Pseudo-labelling the new train images with the base model (child side): old-class objects that the new data
leaves unlabelled would otherwise be taught as background."""

from __future__ import annotations

import logging
from pathlib import Path

from imagerec.training.context import RunContext
from imagerec.training.devices import first_device
from imagerec.training.incremental.classes import ClassMerge
from imagerec.training.incremental.materialise import remap_label_lines
from imagerec.training.incremental.pseudo import from_result, label_boxes, select_pseudo_labels
from imagerec.training.incremental.replay import SourceImage

log = logging.getLogger("imagerec.training.incremental")
CHUNK = 16  # images per predict call


def _read(path: Path):
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)  # a file of the dataset's own storage, validated at registration
    if image is None:
        raise ValueError(f"cannot read {path}")
    return image


def pseudo_label(ctx: RunContext, merge: ClassMerge, images: list[SourceImage],
                 class_maps: dict[int, list[int]]) -> tuple[dict[Path, list[str]], int]:
    """Extra label lines per image path, and how many were added."""
    settings = ctx.params["pseudo_labels"]
    if not settings["enabled"]:
        return {}, 0
    from ultralytics import YOLO

    base = YOLO(str(ctx.base_model.weights_path))
    extra: dict[Path, list[str]] = {}
    added = 0
    for start in range(0, len(images), CHUNK):
        chunk = images[start:start + CHUNK]
        arrays = [_read(image.image) for image in chunk]  # arrays, never paths: nothing for Ultralytics to resolve
        results = base.predict(arrays, conf=settings["conf"], imgsz=ctx.params["imgsz"], verbose=False,
                               device=first_device(ctx.params["device"]))
        for image, result in zip(chunk, results):
            lines = remap_label_lines(image.label.read_text(), class_maps[image.source_id]) if image.label else []
            kept = select_pseudo_labels(from_result(result, ctx.task), label_boxes(lines, ctx.task),
                                        old_count=merge.old_count, conf=settings["conf"], iou=settings["iou"])
            if kept:
                extra[image.image] = [label.line for label in kept]
                added += len(kept)
    log.info(f"pseudo-labels: {added} old-class objects added to {len(extra)} of {len(images)} new images "
             f"(base model {ctx.base_model.id}, conf ≥ {settings['conf']})")
    return extra, added

