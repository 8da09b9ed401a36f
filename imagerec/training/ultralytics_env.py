"""Ultralytics and the libraries under it run offline, with their settings, caches and state inside the data dir.

Call before anything imports ultralytics, matplotlib or onnxruntime: they read their variables when they load,
and ONNX Runtime keeps its telemetry files whatever is set after its import (``disable_telemetry_events()``
included). Left alone, they write outside the data dir:

- Ultralytics: ``settings.json`` (and any font it fetches) in ``~/.config/Ultralytics``;
- matplotlib (Ultralytics' plots in a training): a font cache in ``~/.cache/matplotlib``, ``~/.config/matplotlib``;
- torch: an inductor cache folder, ``$TMPDIR/torchinductor_<user>``, when a model first runs (training, predict);
- ONNX Runtime (annotation on a CPU): its 1DS telemetry, on by default in the official wheels, keeps a device id
  and an event database (model hashes, the Python path) in ``~/.cache/Microsoft/DeveloperTools/.onnxruntime``,
  a session file in ``$TMPDIR``, and uploads to Microsoft. ``ORT_DISABLE_TELEMETRY=1`` turns all of it off.
"""

from __future__ import annotations

import os

from imagerec.config import Settings


def configure(settings: Settings) -> None:
    config_dir = settings.data_dir / "ultralytics"
    config_dir.mkdir(parents=True, exist_ok=True)
    cache_dir = settings.data_dir / "cache"
    os.environ["YOLO_CONFIG_DIR"] = str(config_dir)
    os.environ["YOLO_OFFLINE"] = "1"
    os.environ.setdefault("YOLO_VERBOSE", "True")
    os.environ["MPLCONFIGDIR"] = str(cache_dir / "matplotlib")  # its config and its cache; made on first use
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(cache_dir / "torchinductor")
    os.environ["ORT_DISABLE_TELEMETRY"] = "1"

    from ultralytics.utils import SETTINGS

    SETTINGS.update({"sync": False, "runs_dir": str(settings.data_dir / "runs")})
