"""Ultralytics runs offline, with its settings and caches inside the data dir. Call before importing it."""

from __future__ import annotations

import os

from imagerec.config import Settings


def configure(settings: Settings) -> None:
    config_dir = settings.data_dir / "ultralytics"
    config_dir.mkdir(parents=True, exist_ok=True)
    os.environ["YOLO_CONFIG_DIR"] = str(config_dir)
    os.environ["YOLO_OFFLINE"] = "1"
    os.environ.setdefault("YOLO_VERBOSE", "True")

    from ultralytics.utils import SETTINGS

    SETTINGS.update({"sync": False, "runs_dir": str(settings.data_dir / "runs")})
