"""Latency of ``POST /api/auto_annotate`` next to a plain ``YOLO.predict`` on the same image, interleaved.

    python benchmarks/annotate_latency.py [--rounds 3] [--n 40] [--imgsz 640] [--weights best.pt]

Setup: a yolov8n detect model trained for ~25 s on the synthetic shapes (``tests/trained_models.py``) and
registered in a fresh data dir; two real ``uvicorn main:app`` subprocesses on that data dir, one with the default
engine (ONNX Runtime on a CPU) and one with ``IMAGEREC_ANNOTATE_RUNTIME=torch``; one 640×480 JPEG
(noise with 12 of the training images pasted at their own scale, so the model finds ~25–40 objects, not
garbage) held in memory. Both sides predict at ``--imgsz`` with the default conf/iou.

What each side includes, per sample:
- **http**: httpx builds the multipart body, loopback TCP, the server parses the form, looks the model up
  (SQLite, a read-only session), takes a limiter slot, checks the JPEG's header with Pillow (format, size,
  pixel limit) and decodes its pixels with ``cv2.imdecode`` (EXIF orientation applied), predicts (cached model,
  in a worker thread, ONNX Runtime on as many threads as Ultralytics gives PyTorch), turns the result into
  ``ImageAnnotations``, renders JSON; the client receives and parses the JSON.
- **http_torch**: the same against the server predicting with PyTorch, as plain does: its excess over plain is
  what HTTP and the service's own work cost.
- **plain**: in this process, decode the same JPEG bytes with ``cv2.imdecode`` (how Ultralytics reads image
  files), then ``yolo.predict`` on the array (``verbose=False``); the ``Results`` object is the output.

Samples rotate (http, http_torch, plain; http_torch, plain, http; …) after a warm-up of each, with a 50 ms pause
between samples so no process's threads are still spinning when another measures. ``--rounds`` rounds, each with
fresh server processes and a fresh plain model (a process's predict speed varies by a few percent from one
process to the next); percentiles are over all samples. One machine: the processes share its cores, and so
does whatever else runs there (the load average is recorded). Writes ``benchmarks/out/annotate_latency.json``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import httpx
import numpy as np
from PIL import Image
from server import running_server
from startup import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT))
from imagerec.config import Settings  # noqa: E402
from imagerec.training import ultralytics_env  # noqa: E402

GOAL_P50_RATIO = 1.05
PAUSE_SECONDS = 0.05


def sample_jpeg(dataset_dir: Path, width: int = 640, height: int = 480) -> bytes:
    """640×480: noise with 12 of the model's 64 px training images pasted at their own scale (~25 objects)."""
    rng = np.random.default_rng(0)
    canvas = Image.fromarray(rng.integers(40, 110, (height, width, 3), dtype=np.uint8))
    tiles = sorted((dataset_dir / "images" / "train").glob("*.jpg"))[:12]
    for index, tile in enumerate(tiles):
        with Image.open(tile) as image:
            canvas.paste(image, (40 + (index % 4) * 150, 40 + (index // 4) * 150))
    buffer = io.BytesIO()
    canvas.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def trained_detect_model(work: Path, weights: Path | None = None):
    """yolov8n trained ~25 s on the synthetic shapes (``tests/trained_models.py``), or ``weights`` it produced
    before (its dataset is regenerated: same seed, same images)."""
    from imagerec.datasets.synthetic import class_names, write_dataset
    from tests.trained_models import TrainedModel, TrainedModels

    if weights is None:
        return TrainedModels(work / "trained")("detect")
    dataset_dir = write_dataset("detect", work / "data-detect", train=64, val=16, imgsz=64, seed=1)
    return TrainedModel("detect", weights, dataset_dir, class_names("detect"))


def register_model(data_dir: Path, weights: Path) -> int:
    """Create the data dir's database (the app's lifespan migrates it) and register ``weights`` in it."""
    from fastapi.testclient import TestClient

    from imagerec.app import create_app
    from tests.trained_models import TrainedModel, register_trained_model

    app = create_app(Settings(data_dir=data_dir))
    with TestClient(app):
        trained = TrainedModel("detect", weights, data_dir, ["square", "circle", "triangle"])
        return register_trained_model(app, trained, name="bench-yolov8n")


class PlainPredictor:
    """What a user of Ultralytics alone would run: decode the bytes, predict on the array."""

    def __init__(self, weights: Path, *, imgsz: int, work: Path) -> None:
        ultralytics_env.configure(Settings(data_dir=work / "plain"))
        from ultralytics import YOLO

        self.yolo = YOLO(str(weights))
        self.imgsz = imgsz

    def __call__(self, jpeg: bytes):
        bgr = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)  # Ultralytics' own way to read files
        return self.yolo.predict(bgr, imgsz=self.imgsz, verbose=False)[0]


def http_annotate(client: httpx.Client, jpeg: bytes, *, model_id: int, imgsz: int) -> dict:
    response = client.post("/api/auto_annotate", files={"files": ("bench.jpg", jpeg, "image/jpeg")},
                           data={"model_id": model_id, "imgsz": imgsz})
    response.raise_for_status()
    return response.json()


def timed(action) -> float:
    started = time.perf_counter()
    action()
    elapsed = (time.perf_counter() - started) * 1000
    time.sleep(PAUSE_SECONDS)
    return elapsed


def percentiles(values: list[float]) -> dict:
    ordered = sorted(values)
    return {"n": len(values), "p50_ms": round(statistics.median(ordered), 2),
            "p95_ms": round(ordered[min(len(ordered) - 1, round(len(ordered) * 0.95) - 1)], 2),
            "min_ms": round(ordered[0], 2), "max_ms": round(ordered[-1], 2)}


def interleaved(sides: dict, n: int, warmup: int = 5) -> dict[str, list[float]]:
    """``n`` samples of each side; the order rotates from one index to the next, so no side always goes first."""
    for _ in range(warmup):
        for action in sides.values():
            action()
    samples: dict[str, list[float]] = {name: [] for name in sides}
    names = list(sides)
    for index in range(n):
        for name in names[index % len(names):] + names[:index % len(names)]:
            samples[name].append(timed(sides[name]))
    return samples


def machine() -> dict:
    import torch

    return {"python": platform.python_version(), "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "machine": platform.machine()}


def one_round(work: Path, trained, jpeg: bytes, *, model_id: int, args) -> dict:
    """Fresh server processes (one per engine) and a fresh plain model: a process's own speed varies by a few
    percent."""
    plain = PlainPredictor(trained.weights, imgsz=args.imgsz, work=work)
    with running_server(work / "data", work / "server.log") as client, \
            running_server(work / "data", work / "server-torch.log", annotate_runtime="torch") as torch_client:
        first = http_annotate(client, jpeg, model_id=model_id, imgsz=args.imgsz)  # loads (and exports) the model
        samples = interleaved({
            "http": lambda: http_annotate(client, jpeg, model_id=model_id, imgsz=args.imgsz),
            "http_torch": lambda: http_annotate(torch_client, jpeg, model_id=model_id, imgsz=args.imgsz),
            "plain": lambda: plain(jpeg),
        }, args.n)
    plain_p50 = statistics.median(samples["plain"])
    return {**{f"{side}_ms": values for side, values in samples.items()},
            "instances": len(first["images"][0]["instances"]),
            "p50_ratio": round(statistics.median(samples["http"]) / plain_p50, 3),
            "torch_p50_ratio": round(statistics.median(samples["http_torch"]) / plain_p50, 3)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=40, help="samples of each side per round")
    parser.add_argument("--rounds", type=int, default=3, help="each with a fresh server and plain model")
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--weights", type=Path, help="reuse weights trained by an earlier run (skips ~25 s)")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "benchmarks" / "out" / "annotate_latency.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="imagerec-annotate-latency-") as tmp:
        work = Path(tmp)
        trained = trained_detect_model(work, args.weights)
        jpeg = sample_jpeg(trained.dataset_dir)
        model_id = register_model(work / "data", trained.weights)
        rounds = [one_round(work, trained, jpeg, model_id=model_id, args=args) for _ in range(args.rounds)]
    sides = {side: [value for round_ in rounds for value in round_[f"{side}_ms"]]
             for side in ("http", "http_torch", "plain")}
    result = {side: percentiles(values) for side, values in sides.items()}
    result |= {"imgsz": args.imgsz, "image": "640x480 JPEG", "instances_found": rounds[0]["instances"],
               "round_p50_ratios": [round_["p50_ratio"] for round_ in rounds],
               "round_torch_p50_ratios": [round_["torch_p50_ratio"] for round_ in rounds],
               "goal_p50_ratio": GOAL_P50_RATIO,
               "load_average_1min": round(os.getloadavg()[0], 2), **machine()}  # others' work skews all sides
    plain_p50, plain_p95 = result["plain"]["p50_ms"], result["plain"]["p95_ms"]
    result["p50_ratio"] = round(result["http"]["p50_ms"] / plain_p50, 3)
    result["p95_ratio"] = round(result["http"]["p95_ms"] / plain_p95, 3)
    result["torch_p50_ratio"] = round(result["http_torch"]["p50_ms"] / plain_p50, 3)
    result["torch_p50_overhead_ms"] = round(result["http_torch"]["p50_ms"] - plain_p50, 2)  # HTTP + service
    print(json.dumps(result, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if result["p50_ratio"] <= GOAL_P50_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
