"""Latency of ``GET /api/training/tasks`` while a training runs, next to the same with the server idle.

    python benchmarks/api_latency.py [--seconds 20] [--epochs 30]

One real server (uvicorn subprocess, SQLite, built-in executor). Phase 1: the server idle, sequential GETs for
``--seconds``. Phase 2: a yolov8n training (imgsz 128, 64 images) running in the executor's child process
(it writes progress, metrics and logs to the same SQLite file), sequential GETs for ``--seconds``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from server import REPO_ROOT, register_zip, running_server, wait_finished

sys.path.insert(0, str(REPO_ROOT))
from imagerec.datasets.synthetic import write_dataset_zip  # noqa: E402


def sample(client, seconds: float) -> list[float]:
    latencies = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.perf_counter()
        client.get("/api/training/tasks").raise_for_status()
        latencies.append((time.perf_counter() - started) * 1000)
        time.sleep(0.01)
    return latencies


def percentiles(values: list[float]) -> dict:
    ordered = sorted(values)
    return {"n": len(values), "p50_ms": round(statistics.median(ordered), 2),
            "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 2),
            "max_ms": round(ordered[-1], 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "benchmarks" / "out" / "api_latency.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="imagerec-latency-") as tmp:
        work = Path(tmp)
        archive = write_dataset_zip("detect", work / "detect.zip", train=64, val=16, imgsz=128)
        with running_server(work / "data", work / "server.log") as client:
            dataset = register_zip(client, archive, name="latency", task="detect")
            idle = sample(client, args.seconds)
            body = {"dataset_id": dataset["id"], "architecture": "yolov8n", "epochs": args.epochs, "imgsz": 128,
                    "batch": 8, "device": "cpu", "workers": 0}
            task = client.post("/api/training/regular", json=body).json()
            while client.get(f"/api/tasks/{task['id']}").json()["status"] != "running":
                time.sleep(0.05)
            busy = sample(client, args.seconds)
            still_running = client.get(f"/api/tasks/{task['id']}").json()["status"] == "running"
            client.post(f"/api/tasks/{task['id']}/cancel")
            wait_finished(client, task["id"])
    result = {"idle": percentiles(idle), "during_training": percentiles(busy),
              "training_ran_throughout": still_running, "seconds_per_phase": args.seconds}
    print(json.dumps(result, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
