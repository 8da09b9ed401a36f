"""Latency of ``GET /api/training/tasks`` at 1, 10, 50 and 200 concurrent clients, idle and during a training.

    python benchmarks/api_concurrency.py [--requests 4] [--epochs 40] [--tasks 50]

One real server (uvicorn subprocess, SQLite, the built-in executor) with ``--tasks`` task rows, so each answer
carries a realistic page. For each concurrency level N, N clients (threads, one connection each) start together
behind a barrier and each sends ``--requests`` GETs (``limit=500``) back to back; the table reports p50/p99 over
all of them and the count of answers >= 500 (503 = honest saturation is counted apart). The same levels are then
measured while a yolov8n training (imgsz 128, 64 images) runs in the executor's child and writes its progress,
metrics and logs to the same database. Both phases run in one process, one after the other.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from api_latency import percentiles
from server import AUTH, REPO_ROOT, register_zip, running_server, wait_finished

sys.path.insert(0, str(REPO_ROOT))
from imagerec.datasets.synthetic import write_dataset_zip  # noqa: E402

LEVELS = (1, 10, 50, 200)


def burst(base_url: str, clients: int, requests: int) -> dict:
    barrier = threading.Barrier(clients)

    def one_client(_index: int) -> list[tuple[int, float]]:
        results = []
        with httpx.Client(base_url=base_url, timeout=300, headers=AUTH) as client:
            barrier.wait()
            for _ in range(requests):
                started = time.perf_counter()
                code = client.get("/api/training/tasks", params={"limit": 500}).status_code
                results.append((code, (time.perf_counter() - started) * 1000))
        return results

    with ThreadPoolExecutor(max_workers=clients) as pool:
        answers = [answer for batch in pool.map(one_client, range(clients)) for answer in batch]
    ok = [ms for code, ms in answers if code == 200]
    return {"clients": clients, **percentiles([ms for _, ms in answers]),
            "ok": len(ok), "503": sum(code == 503 for code, _ in answers),
            "server_errors": sum(code >= 500 and code != 503 for code, _ in answers)}


def fill_tasks(client: httpx.Client, dataset_id: int, count: int) -> None:
    """Task rows for the listing: trainings queued and cancelled at once (nothing runs)."""
    for index in range(count):
        body = {"dataset_id": dataset_id, "architecture": "yolov8n", "epochs": 1, "imgsz": 64, "name": f"row-{index}"}
        task = client.post("/api/training/regular", json=body).json()
        client.post(f"/api/tasks/{task['id']}/cancel")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=4, help="GETs per client per level")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--tasks", type=int, default=50)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "benchmarks" / "out" / "api_concurrency.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="imagerec-concurrency-") as tmp:
        work = Path(tmp)
        archive = write_dataset_zip("detect", work / "detect.zip", train=64, val=16, imgsz=128)
        with running_server(work / "data", work / "server.log", executor_concurrency="1") as client:
            dataset = register_zip(client, archive, name="concurrency", task="detect")
            fill_tasks(client, dataset["id"], args.tasks)
            base_url = str(client.base_url)
            idle = [burst(base_url, level, args.requests) for level in LEVELS]
            body = {"dataset_id": dataset["id"], "architecture": "yolov8n", "epochs": args.epochs, "imgsz": 128,
                    "batch": 8, "device": "cpu", "workers": 0}
            task = client.post("/api/training/regular", json=body).json()
            while client.get(f"/api/tasks/{task['id']}").json()["status"] != "running":
                time.sleep(0.05)
            training = [burst(base_url, level, args.requests) for level in LEVELS]
            still_running = client.get(f"/api/tasks/{task['id']}").json()["status"] == "running"
            client.post(f"/api/tasks/{task['id']}/cancel")
            ended = wait_finished(client, task["id"])
    result = {"idle": idle, "during_training": training, "training_still_running_at_end": still_running,
              "training_end_state": ended["status"], "requests_per_client": args.requests}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"{'phase':<16}{'clients':>8}{'p50 ms':>10}{'p99 ms':>10}{'ok':>6}{'503':>6}{'5xx':>6}")
    for phase, rows in (("idle", idle), ("during training", training)):
        for row in rows:
            print(f"{phase:<16}{row['clients']:>8}{row['p50_ms']:>10}{row['p99_ms']:>10}{row['ok']:>6}"
                  f"{row['503']:>6}{row['server_errors']:>6}")
    print(f"training still running when measured: {still_running}; "
          f"it ended {ended['status']} (cancelled by the script)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
