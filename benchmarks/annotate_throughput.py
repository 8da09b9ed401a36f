"""Throughput of ``POST /api/auto_annotate`` with 1, 4 and 8 concurrent clients vs raw sequential predict.

    python benchmarks/annotate_throughput.py [--rounds 3] [--requests 32] [--clients 1 4 8] [--weights best.pt]

Same setup as ``annotate_latency.py`` (trained yolov8n, one 640×480 JPEG, a real uvicorn subprocess). The
server runs with ``IMAGEREC_ANNOTATE_MAX_CONCURRENT=2`` and ``IMAGEREC_ANNOTATE_MAX_WAITING=16`` (the defaults,
set explicitly): 8 clients fit (2 running + 6 waiting), so no request should be refused with 429; every non-200
answer counts as an error.

- **raw**: in this process, ``cv2.imdecode + yolo.predict`` on the same JPEG, back to back, ``--requests``
  times (as in ``annotate_latency.py``).
- **http, c clients**: ``c`` threads, each with its own HTTP connection, send ``--requests`` requests in all
  (one image each) as fast as answers come; rate = requests / wall time from first send to last answer. Once
  against a server with the default engine (``auto``: ONNX Runtime on a CPU, the goal's subject) and once with
  ``IMAGEREC_ANNOTATE_RUNTIME=torch`` (PyTorch, as raw: what HTTP and the service cost).

``--rounds`` rounds of (raw, then per engine 1, 4, 8 clients), each with fresh servers and a fresh plain model; each
ratio = http rate / the same round's raw rate; the medians are reported (goal ≥ 0.95 at 8 clients, zero
errors). One machine: server, clients and the raw loop share its cores with whatever else runs there (the load
average is recorded). Writes ``benchmarks/out/annotate_throughput.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from annotate_latency import (
    PlainPredictor,
    machine,
    register_model,
    sample_jpeg,
    trained_detect_model,
)
from server import AUTH, running_server
from startup import REPO_ROOT

GOAL_RATIO_AT_8 = 0.95
SERVER_SETTINGS = {"annotate_max_concurrent": "2", "annotate_max_waiting": "16"}


def raw_rate(plain: PlainPredictor, jpeg: bytes, count: int) -> float:
    plain(jpeg)
    started = time.perf_counter()
    for _ in range(count):
        plain(jpeg)
    return count / (time.perf_counter() - started)


def http_rate(base_url: str, jpeg: bytes, *, model_id: int, imgsz: int, clients: int, count: int) -> dict:
    remaining = iter(range(count))
    lock = threading.Lock()
    statuses: list[int] = []

    def client_loop() -> None:
        with httpx.Client(base_url=base_url, timeout=300, headers=AUTH) as client:
            while True:
                with lock:
                    if next(remaining, None) is None:
                        return
                response = client.post("/api/auto_annotate", files={"files": ("bench.jpg", jpeg, "image/jpeg")},
                                       data={"model_id": model_id, "imgsz": imgsz})
                with lock:
                    statuses.append(response.status_code)

    threads = [threading.Thread(target=client_loop) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    return {"clients": clients, "requests": len(statuses), "seconds": round(elapsed, 2),
            "images_per_s": round(len(statuses) / elapsed, 3),
            "errors": sum(status != 200 for status in statuses), "refused_429": statuses.count(429)}


def one_round(work: Path, trained, jpeg: bytes, *, model_id: int, args) -> dict:
    """Raw, then every client level against a fresh server per engine, and a fresh plain model (a process's own
    predict speed varies by a few percent); each level's ratio is to this round's raw rate."""
    plain = PlainPredictor(trained.weights, imgsz=args.imgsz, work=work)
    raw = raw_rate(plain, jpeg, args.requests)
    levels = {}
    for runtime in args.runtimes:
        log = work / f"server-{runtime}.log"
        with running_server(work / "data", log, annotate_runtime=runtime, **SERVER_SETTINGS) as client:
            client.post("/api/auto_annotate", files={"files": ("warm.jpg", jpeg, "image/jpeg")},
                        data={"model_id": model_id, "imgsz": args.imgsz}).raise_for_status()  # loads the model
            levels[runtime] = [http_rate(str(client.base_url), jpeg, model_id=model_id, imgsz=args.imgsz,
                                         clients=clients, count=args.requests) for clients in args.clients]
        for level in levels[runtime]:
            level["ratio_to_raw"] = round(level["images_per_s"] / raw, 3)
    return {"raw_images_per_s": round(raw, 3), "levels": levels}


def summary(rounds: list[dict], runtime: str, clients: list[int]) -> list[dict]:
    summarized = []
    for index, count in enumerate(clients):
        levels = [round_["levels"][runtime][index] for round_ in rounds]
        summarized.append({
            "clients": count,
            "images_per_s_median": round(statistics.median(level["images_per_s"] for level in levels), 3),
            "ratio_median": round(statistics.median(level["ratio_to_raw"] for level in levels), 3),
            "ratios": [level["ratio_to_raw"] for level in levels],
            "errors": sum(level["errors"] for level in levels),
            "refused_429": sum(level["refused_429"] for level in levels),
        })
    return summarized


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=32, help="requests per level and round (and raw predicts)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--runtimes", nargs="+", default=["auto", "torch"], choices=["auto", "onnx", "torch"],
                        help="server engines; auto (the default: ONNX Runtime on a CPU) is the one the goal is for")
    parser.add_argument("--weights", type=Path, help="reuse weights trained by an earlier run (skips ~25 s)")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "benchmarks" / "out" / "annotate_throughput.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="imagerec-annotate-throughput-") as tmp:
        work = Path(tmp)
        trained = trained_detect_model(work, args.weights)
        jpeg = sample_jpeg(trained.dataset_dir)
        model_id = register_model(work / "data", trained.weights)
        rounds = [one_round(work, trained, jpeg, model_id=model_id, args=args) for _ in range(args.rounds)]
    result = {"levels": {runtime: summary(rounds, runtime, args.clients) for runtime in args.runtimes},
              "raw_images_per_s_median": round(statistics.median(r["raw_images_per_s"] for r in rounds), 3),
              "rounds": rounds, "imgsz": args.imgsz, "image": "640x480 JPEG", "server_settings": SERVER_SETTINGS,
              "goal_ratio_at_8": GOAL_RATIO_AT_8, "load_average_1min": round(os.getloadavg()[0], 2), **machine()}
    print(json.dumps({key: value for key, value in result.items() if key != "rounds"}, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    goal_levels = result["levels"].get("auto", next(iter(result["levels"].values())))
    at_8 = next((level for level in goal_levels if level["clients"] == 8), None)
    ok = at_8 is None or (at_8["ratio_median"] >= GOAL_RATIO_AT_8 and at_8["errors"] == 0)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
