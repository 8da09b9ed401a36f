"""What an evaluation through the service costs over a plain ``YOLO(w).val(...)``: wall time over wall time.

    cd benchmarks && ../.venv/bin/python evaluation_overhead.py [--rounds 3] [--val-images 1000] [--imgsz 64]
        [--warmup 1] [--weights W]

Setup, once: a yolov8n detect model trained ~25 s on the synthetic shapes (``annotate_latency.py``) and registered
in a fresh data dir; a synthetic detect dataset (``write_dataset("detect", train=8, val=--val-images, imgsz=64,
seed=3)``) zipped and uploaded through ``POST /api/datasets``; ONE real ``uvicorn main:app`` for all rounds, its
executor polling every ``EXECUTOR_POLL_SECONDS`` (it is also woken when a task is queued). The 64 px images are
validated at ``--imgsz`` 64, the size the model learned at (at 640 it finds nothing: mAP 0 and no predictions
for the analysis to match); 1000 of them so validation, not process start, dominates. Three ways to evaluate
the model on the dataset's val split, batch 16 on the CPU, Ultralytics' plots on:

- **plain**: a fresh ``python -c`` that configures the Ultralytics environment as the service's child does
  (``ultralytics_env.configure`` on a scratch data dir), then ``YOLO(weights).val(data=<YAML>, …)``; the YAML,
  written here, points at the registered dataset's own files folder. Timed from the subprocess' start to its
  exit: process start and ``import ultralytics`` are in, as they are in the service's child.
- **off** / **on**: ``POST /api/evaluations`` with ``analysis`` false / true, then ``GET /api/tasks/{id}`` every
  0.1 s; timed from just before the POST to the poll that sees ``succeeded``. Included: the request, the
  executor's claim, the spawned child (its imports, its YAML, Ultralytics' validator with the confusion matrix
  at the operating point, the result and, when on, the per-image analysis and label issues, stored in SQLite).

``--warmup`` untimed runs of each way come first (Ultralytics' label cache, matplotlib's font caches, the page
cache). Each round runs the three ways in turn, the order rotated from one round to the next; before the next
run starts, the previous child must have been reaped (``/health``'s active tasks), so no two evaluations share
the two cores. Ratios off/plain and on/plain are taken per round (side by side in time) and their median is the
result; the task's own ``started_at``→``finished_at`` is recorded too, to tell the executor's queueing and the
polling apart from the child's work. Sanity: every run's ``map50_95`` is the same (plain's included, to 6
digits) and an "on" evaluation has one image row per val image.

Writes ``benchmarks/out/evaluation_overhead.json``; exits 1 when the median off ratio is above 1.05 or the median
on ratio above 1.3.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import httpx
import yaml
from annotate_latency import machine, register_model, trained_detect_model
from server import register_zip, running_server, wait_finished
from startup import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT))
from imagerec.datasets.synthetic import write_dataset, zip_folder  # noqa: E402

GOALS = {"off": 1.05, "on": 1.3}
WAYS = ("plain", "off", "on")
BATCH = 16
EXECUTOR_POLL_SECONDS = "0.05"
TASK_POLL_SECONDS = 0.1
PLAIN_SCRIPT = """
import json, sys
from pathlib import Path
from imagerec.config import Settings
from imagerec.training import ultralytics_env
weights, data, imgsz, batch, project, name, home, out = sys.argv[1:]
ultralytics_env.configure(Settings(data_dir=home))
from ultralytics import YOLO
metrics = YOLO(weights).val(data=data, imgsz=int(imgsz), batch=int(batch), device="cpu", workers=0, plots=True,
                            verbose=False, project=project, name=name, exist_ok=True)
Path(out).write_text(json.dumps({"map50_95": float(metrics.box.map)}))
"""


def register_dataset(client: httpx.Client, work: Path, *, val_images: int) -> dict:
    folder = write_dataset("detect", work / "eval-dataset", train=8, val=val_images, imgsz=64, seed=3)
    return register_zip(client, zip_folder(folder, work / "eval-dataset.zip"), name="bench-evaluation",
                        task="detect")


def plain_yaml(data_dir: Path, dataset: dict, target: Path) -> Path:
    """The registered dataset's own files, as a user of Ultralytics alone would point at them."""
    with sqlite3.connect(f"file:{data_dir / 'imagerec.db'}?mode=ro", uri=True) as db:
        (storage_path,) = db.execute("SELECT storage_path FROM datasets WHERE id = ?", (dataset["id"],)).fetchone()
    content = {"path": str(data_dir / storage_path / "files"), "train": "images/val", "val": "images/val",
               "names": dict(enumerate(dataset["class_names"]))}
    target.write_text(yaml.safe_dump(content, sort_keys=False))
    return target


def plain_run(work: Path, *, weights: Path, data: Path, imgsz: int, name: str) -> dict:
    env = {key: value for key, value in os.environ.items() if not key.startswith("IMAGEREC_")}
    out = work / "plain-runs" / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-c", PLAIN_SCRIPT, str(weights), str(data), str(imgsz), str(BATCH),
               str(work / "plain-runs"), name, str(work / "plain-home"), str(out)]
    with (work / "plain-runs" / f"{name}.log").open("w") as log:
        started = time.perf_counter()
        subprocess.run(command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, check=True)
        seconds = time.perf_counter() - started
    return {"seconds": seconds, "map50_95": json.loads(out.read_text())["map50_95"]}


def seconds_between(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def wait_reaped(client: httpx.Client) -> None:
    """The child has exited and the executor has seen it: the next run has the cores to itself."""
    while client.get("/health").json()["executor"]["active_tasks"]:
        time.sleep(TASK_POLL_SECONDS)


def service_run(client: httpx.Client, *, model_id: int, dataset_id: int, imgsz: int, analysis: bool) -> dict:
    body = {"model_id": model_id, "dataset_id": dataset_id, "imgsz": imgsz, "batch": BATCH, "device": "cpu",
            "analysis": analysis}
    started = time.perf_counter()
    evaluation = client.post("/api/evaluations", json=body).raise_for_status().json()
    task = wait_finished(client, evaluation["task_id"], poll=TASK_POLL_SECONDS)
    seconds = time.perf_counter() - started
    if task["status"] != "succeeded":
        raise SystemExit(f"evaluation task {task['id']} ended {task['status']}: {task['error']}")
    evaluation = client.get(f"/api/evaluations/{evaluation['id']}").raise_for_status().json()
    rows = client.get(f"/api/evaluations/{evaluation['id']}/images", params={"limit": 1}).raise_for_status().json()
    wait_reaped(client)
    return {"seconds": seconds, "task_running_s": seconds_between(task["started_at"], task["finished_at"]),
            "queued_s": seconds_between(task["created_at"], task["started_at"]),
            "map50_95": evaluation["metrics"]["overall"]["box"]["map50_95"], "image_rows": rows["total"]}


def one_round(index: int, runners: dict) -> dict:
    order = list(WAYS[index % len(WAYS):] + WAYS[:index % len(WAYS)])  # no way always goes first
    runs = {way: runners[way](f"round{index}") for way in order}
    print(f"round {index + 1}: " + ", ".join(f"{way} {runs[way]['seconds']:.2f} s" for way in order), flush=True)
    return {"order": order, **runs, **{f"{way}_over_plain": runs[way]["seconds"] / runs["plain"]["seconds"]
                                       for way in ("off", "on")}}


def check(rounds: list[dict], *, val_images: int) -> float:
    """The one ``map50_95`` every run found; stops the benchmark when the runs did not do the same work."""
    service = {round_[way]["map50_95"] for round_ in rounds for way in ("off", "on")}
    plain = {round(round_["plain"]["map50_95"], 6) for round_ in rounds}
    if len(service) != 1 or plain != service:
        raise SystemExit(f"map50_95 differs between runs: service {sorted(service)}, plain {sorted(plain)}")
    rows = {round_["on"]["image_rows"] for round_ in rounds}
    if rows != {val_images}:
        raise SystemExit(f"an 'on' evaluation stored {sorted(rows)} image rows, not {val_images}")
    return service.pop()


def summary(rounds: list[dict], way: str) -> dict:
    seconds = [round_[way]["seconds"] for round_ in rounds]
    result = {"median_s": round(statistics.median(seconds), 3), "seconds": [round(value, 3) for value in seconds]}
    if way == "plain":
        return result
    running = [round_[way]["task_running_s"] for round_ in rounds]
    outside = [round_[way]["seconds"] - round_[way]["task_running_s"] for round_ in rounds]
    return result | {"task_running_median_s": round(statistics.median(running), 3),
                     "task_running_s": [round(value, 3) for value in running],
                     "queued_s": [round(round_[way]["queued_s"], 3) for round_ in rounds],
                     "outside_task_median_s": round(statistics.median(outside), 3),
                     "image_rows": rounds[0][way]["image_rows"]}


def ratios(rounds: list[dict], way: str) -> dict:
    per_round = [round_[f"{way}_over_plain"] for round_ in rounds]
    running = [round_[way]["task_running_s"] / round_["plain"]["seconds"] for round_ in rounds]
    return {"median": round(statistics.median(per_round), 4), "rounds": [round(value, 4) for value in per_round],
            "goal": GOALS[way], "task_running_over_plain_median": round(statistics.median(running), 4)}


def measure(work: Path, args) -> tuple[list[dict], dict, float]:
    trained = trained_detect_model(work, args.weights)
    model_id = register_model(work / "data", trained.weights)
    with running_server(work / "data", work / "server.log", executor_poll_seconds=EXECUTOR_POLL_SECONDS) as client:
        dataset = register_dataset(client, work, val_images=args.val_images)
        data = plain_yaml(work / "data", dataset, work / "plain-data.yaml")
        runners = {
            "plain": lambda name: plain_run(work, weights=trained.weights, data=data, imgsz=args.imgsz, name=name),
            "off": lambda _name: service_run(client, model_id=model_id, dataset_id=dataset["id"], imgsz=args.imgsz,
                                             analysis=False),
            "on": lambda _name: service_run(client, model_id=model_id, dataset_id=dataset["id"], imgsz=args.imgsz,
                                            analysis=True),
        }
        load_at_start = os.getloadavg()[0]
        warmup = {way: [round(runners[way](f"warmup{index}")["seconds"], 3) for index in range(args.warmup)]
                  for way in WAYS}
        print(f"warm-up: {warmup}", flush=True)
        rounds = [one_round(index, runners) for index in range(args.rounds)]
    return rounds, warmup, load_at_start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="each runs all three ways, in a rotated order")
    parser.add_argument("--val-images", type=int, default=1000, help="64 px synthetic images in the val split")
    parser.add_argument("--imgsz", type=int, default=64, help="the size the validator letterboxes them to (the "
                        "model learned at 64 px: larger sizes find nothing, which leaves the analysis no work)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs of each way before the rounds")
    parser.add_argument("--weights", type=Path, help="reuse weights trained by an earlier run (skips ~25 s)")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "benchmarks" / "out" / "evaluation_overhead.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="imagerec-evaluation-overhead-") as tmp:
        rounds, warmup, load_at_start = measure(Path(tmp), args)
    map50_95 = check(rounds, val_images=args.val_images)
    result = {way: summary(rounds, way) for way in WAYS}
    result |= {"off_over_plain": ratios(rounds, "off"), "on_over_plain": ratios(rounds, "on"),
               "orders": [round_["order"] for round_ in rounds], "warmup_s": warmup, "map50_95": map50_95,
               "val_images": args.val_images, "image_px": 64, "imgsz": args.imgsz, "batch": BATCH,
               "executor_poll_seconds": float(EXECUTOR_POLL_SECONDS), "task_poll_seconds": TASK_POLL_SECONDS,
               "load_average_1min_at_start": round(load_at_start, 2),
               "load_average_1min": round(os.getloadavg()[0], 2), **machine()}  # others' work skews every way
    print(json.dumps(result, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    missed = [way for way in GOALS if result[f"{way}_over_plain"]["median"] > GOALS[way]]
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
