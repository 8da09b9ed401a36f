"""The one wrapper around Ultralytics' ``YOLO.val``: every evaluation in imagerec goes through ``validate``.

Options on top of Ultralytics' own validator, added by subclassing it (its loop is never copied):

- ``capture``: after Ultralytics has scored each image, its labels and predictions are kept in original image
  pixels (boxes for detect/segment/pose, top-5 for classify) for the per-image analysis; predictions are kept
  down to ``CAPTURE_FLOOR`` confidence, at most ``CAPTURE_MAX`` per image.
- ``operating_conf`` / ``match_iou``: the confusion matrix is counted at the evaluation's operating point (by
  default Ultralytics counts it at its validation confidence, 0.001), so the matrix and its plot say what the
  model does at the confidence a user runs it with.
- ``on_batch``: called after every batch with (batches done, batches in all); it may raise to stop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from imagerec.vision import VisionTask

CAPTURE_FLOOR = 0.01
CAPTURE_MAX = 100


@dataclass
class Captured:
    """What the validator saw, image by image (file path → labels, predictions or top-5)."""

    images: dict[str, dict[str, Any]] = field(default_factory=dict)


def _box_capture_mixin(base: type, captured: Captured | None, operating_conf: float | None,
                       match_iou: float) -> type:
    from ultralytics.utils import ops

    class CapturingValidator(base):
        def init_metrics(self, model):
            super().init_metrics(model)
            if operating_conf is not None:
                count = self.confusion_matrix.process_batch
                self.confusion_matrix.process_batch = (
                    lambda detections, batch, conf=None, iou_thres=None: count(detections, batch, conf=operating_conf,
                                                                               iou_thres=match_iou))

        def update_metrics(self, preds, batch):
            super().update_metrics(preds, batch)
            if captured is None:
                return
            for si, pred in enumerate(preds):
                pbatch = self._prepare_batch(si, batch)
                labels = ops.scale_boxes(pbatch["imgsz"], pbatch["bboxes"].clone(), pbatch["ori_shape"],
                                         ratio_pad=pbatch["ratio_pad"])
                boxes = ops.scale_boxes(pbatch["imgsz"], pred["bboxes"].clone(), pbatch["ori_shape"],
                                        ratio_pad=pbatch["ratio_pad"])
                conf = pred["conf"].cpu().numpy()
                keep = np.flatnonzero(conf >= CAPTURE_FLOOR)[:CAPTURE_MAX]  # NMS output is sorted by confidence
                predictions = np.column_stack([pred["cls"].cpu().numpy()[keep], conf[keep], boxes.cpu().numpy()[keep]])
                captured.images[pbatch["im_file"]] = {
                    "labels": np.column_stack([pbatch["cls"].cpu().numpy(), labels.cpu().numpy()]).reshape(-1, 5),
                    "predictions": predictions.reshape(-1, 6),
                    "shape": [int(v) for v in pbatch["ori_shape"]],
                }

    return CapturingValidator


def _classify_capture_mixin(base: type, captured: Captured) -> type:
    class CapturingValidator(base):
        def init_metrics(self, model):
            super().init_metrics(model)
            self._captured_count = 0

        def update_metrics(self, preds, batch):
            super().update_metrics(preds, batch)
            samples = self.dataloader.dataset.samples
            top = preds.topk(min(5, preds.shape[1]), dim=1)
            for row in range(preds.shape[0]):
                path, label = samples[self._captured_count][:2]
                self._captured_count += 1
                captured.images[str(path)] = {
                    "label": int(label),
                    "top": [(int(c), float(p)) for c, p in zip(top.indices[row].tolist(), top.values[row].tolist())],
                }

    return CapturingValidator


def _validator_class(yolo, task: str, captured: Captured | None, operating_conf: float | None,
                     match_iou: float) -> type | None:
    if captured is None and operating_conf is None:
        return None
    base = yolo.task_map[yolo.task]["validator"]
    if task == VisionTask.classify:
        return _classify_capture_mixin(base, captured) if captured is not None else None
    return _box_capture_mixin(base, captured, operating_conf, match_iou)


def validate(weights: Path | str, *, data: str, task: str, split: str = "val", imgsz: int, batch: int,
             device: str, project: Path, name: str, plots: bool = False, iou: float = 0.7,
             operating_conf: float | None = None, match_iou: float = 0.5, capture: Captured | None = None,
             on_batch: Callable[[int, int], None] | None = None, with_model: bool = False):
    """Ultralytics' metrics object for ``weights`` on ``data`` (the server's YAML, or a classify folder); with
    ``with_model``, also the loaded ``YOLO`` object."""
    from ultralytics import YOLO

    yolo = YOLO(str(weights))
    if on_batch is not None:
        yolo.add_callback("on_val_batch_end",
                          lambda validator: on_batch(validator.batch_i + 1, len(validator.dataloader)))
    validator = _validator_class(yolo, task, capture, operating_conf, match_iou)
    metrics = yolo.val(validator=validator, data=data, split=split, imgsz=imgsz, batch=batch, device=device,
                       plots=plots, iou=iou, verbose=False, workers=0, project=str(project), name=name, exist_ok=True)
    return (metrics, yolo) if with_model else metrics
