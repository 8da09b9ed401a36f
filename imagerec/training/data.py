"""The data argument handed to Ultralytics, always written by the server from validated rows.

A user's own data YAML is never passed on: its ``download:`` key is executed by Ultralytics.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from imagerec.training.context import DatasetInfo
from imagerec.vision import VisionTask


def write_data_yaml(dataset: DatasetInfo, target: Path) -> Path:
    content: dict = {
        "path": str(dataset.files_dir),
        "train": "images/train",
        "val": "images/val",
        "names": dict(enumerate(dataset.class_names)),
    }
    if dataset.task == VisionTask.pose:
        content["kpt_shape"] = list(dataset.kpt_shape)
        if dataset.flip_idx is not None:
            content["flip_idx"] = list(dataset.flip_idx)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(yaml.safe_dump(content, sort_keys=False))
    return target


def data_argument(dataset: DatasetInfo, run_dir: Path) -> str:
    """Classification takes the folder itself (train/<class>/…); the others take the server's YAML."""
    if dataset.task == VisionTask.classify:
        return str(dataset.files_dir)
    return str(write_data_yaml(dataset, run_dir / "data.yaml"))
