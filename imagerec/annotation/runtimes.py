"""The engine a registered model runs on for annotation: ONNX Runtime on a CPU, PyTorch otherwise.

Why: on a CPU, ONNX Runtime runs a YOLOv8 network about 1.4× faster than PyTorch on the same number of threads
(``docs/benchmarks.md``), and the network is most of an annotation request's time. Ultralytics still does all
around it (letterbox, NMS, masks, ``Results``), so boxes match the PyTorch ones to about 1e-4 px.

- The ONNX file is exported once per weights file with Ultralytics' own exporter, next to the weights and named
  after their mtime (``best.<mtime_ns>.onnx``: new weights get a new export; deleting a model's folder deletes
  it). The export starts from a copy in a scratch folder (the exporter writes next to its input) and is renamed
  into place: no reader sees half a file, and two processes exporting at once both end with a whole one.
- Height and width stay dynamic, so a 640×480 image keeps the rectangular letterbox PyTorch gives it.
- The session runs on ``annotate_cpu_threads`` threads: by default the number Ultralytics gives PyTorch on a CPU
  (cores − 1, 1 to 8), so neither engine gets more of the machine than the other.
- With CUDA available (``auto``), or when the export or the session fails, the model runs on PyTorch; a failure
  is logged with its reason.

Only weights the service registered come here: loading a ``.pt`` unpickles it.
"""

from __future__ import annotations

import importlib.util
import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from imagerec.config import Settings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class InferenceModel:
    """A loaded model and what callers need to know about it, whichever engine runs it."""

    yolo: Any
    names: dict[int, str]
    kpt_names: Any
    kpt_shape: list[int] | None
    runtime: str  # "onnx" or "torch"


def load_inference_model(weights_path: Path, settings: Settings) -> InferenceModel:
    """Load registered weights for predicting; blocking (seconds on the first export), for a worker thread."""
    from imagerec.training import ultralytics_env

    ultralytics_env.configure(settings)
    from ultralytics import YOLO

    torch_yolo = YOLO(str(weights_path))
    facts = dict(names=dict(torch_yolo.names), kpt_names=getattr(torch_yolo.model, "kpt_names", None),
                 kpt_shape=list(getattr(torch_yolo.model, "kpt_shape", None) or []) or None)
    if chosen_runtime(settings) == "torch":
        return InferenceModel(yolo=torch_yolo, runtime="torch", **facts)
    try:
        onnx_yolo = _onnx_yolo(weights_path, settings, task=torch_yolo.task)
    except Exception as error:  # noqa: BLE001 - any failure of the faster engine leaves the PyTorch one
        logger.warning("ONNX Runtime unavailable for %s, predicting with PyTorch: %s", weights_path.name, error)
        return InferenceModel(yolo=torch_yolo, runtime="torch", **facts)
    return InferenceModel(yolo=onnx_yolo, runtime="onnx", **facts)


def chosen_runtime(settings: Settings) -> str:
    if settings.annotate_runtime != "auto":
        return settings.annotate_runtime
    import torch

    if torch.cuda.is_available() or importlib.util.find_spec("onnxruntime") is None:
        return "torch"
    return "onnx"


def cpu_threads(settings: Settings) -> int:
    if settings.annotate_cpu_threads is not None:
        return settings.annotate_cpu_threads
    from ultralytics.utils import NUM_THREADS  # what Ultralytics' select_device gives PyTorch on a CPU

    return NUM_THREADS


def onnx_file(weights_path: Path) -> Path:
    """Where the export of these weights lives: new weights at the same path (new mtime) get a new file."""
    return weights_path.with_name(f"{weights_path.stem}.{weights_path.stat().st_mtime_ns}.onnx")


def export_onnx(weights_path: Path, target: Path) -> Path:
    """Export ``weights_path`` to ``target`` (dynamic height and width), atomically; returns ``target``."""
    from ultralytics import YOLO

    for stale in weights_path.parent.glob(f"{weights_path.stem}.*.onnx"):  # of older weights at the same path
        if stale != target:
            stale.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".export-") as scratch:
        copy = Path(scratch) / "model.pt"
        shutil.copyfile(weights_path, copy)
        exported = YOLO(str(copy)).export(format="onnx", dynamic=True, simplify=False, half=False, verbose=False)
        Path(exported).replace(target)
    return target


def _onnx_yolo(weights_path: Path, settings: Settings, *, task: str):
    from ultralytics import YOLO

    path = onnx_file(weights_path)
    if not path.exists():
        export_onnx(weights_path, path)
    yolo = YOLO(str(path), task=task)
    # Ultralytics builds the session on the first predict, with ONNX Runtime's default thread count
    yolo.predict(np.zeros((64, 64, 3), np.uint8), imgsz=64, verbose=False, save=False)
    _pin_session_threads(yolo, path, threads=cpu_threads(settings))
    return yolo


def _pin_session_threads(yolo, path: Path, *, threads: int) -> None:
    import onnxruntime

    backend = yolo.predictor.model.backend
    if not isinstance(getattr(backend, "session", None), onnxruntime.InferenceSession):
        raise RuntimeError("Ultralytics' ONNX backend keeps no ONNX Runtime session where expected")
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    backend.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
