"""Scale-out: submit-to-running latency (Celery vs the built-in executor) and reads under load (SQLite vs PostgreSQL).

    python benchmarks/scale_out.py [--submits 20] [--readers 100] [--requests 4] [--epochs 40]
                                   [--postgres postgresql://postgres@127.0.0.1:5432/test] [--redis redis://127.0.0.1:6379]

1. **Submit → running.** One real server per executor, one after the other in this run: the built-in executor
   on SQLite, then the Celery executor on PostgreSQL with one ``imagerec worker`` (Redis broker). ``--submits``
   dataset imports are sent one at a time (each a second after the previous one ended, so its child process has
   exited and its slot is free: nothing queues behind another);
   the latency is the task's ``started_at − created_at`` (the worker's claim minus the request's commit), read
   from the task rows.
2. **Reads during a training.** The built-in executor on SQLite, then on PostgreSQL, ``--rounds`` times in turn
   (SQLite, PostgreSQL, SQLite, …, so machine noise falls on both): while a yolov8n training (imgsz 128, 64
   images) runs, ``--readers`` clients start together and each sends ``--requests``
   ``GET /api/training/tasks?limit=500`` back to back, over 50 task rows; p50/p99 over each round's answers.

3. **Sending.** ``--messages`` "run task" messages sent to a throwaway queue (what the API's dispatch loop does
   for 1,000 queued tasks), then the queue is purged: messages per second.

A PostgreSQL database is made for each server and dropped after it.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import httpx
from api_concurrency import burst, fill_tasks
from server import REPO_ROOT, register_zip, running_server, wait_finished
from startup import server_env

sys.path.insert(0, str(REPO_ROOT))
from imagerec.datasets.synthetic import write_dataset_zip  # noqa: E402


def _quantiles(values: list[float]) -> dict:
    ordered = sorted(values)
    return {"n": len(ordered), "p50_ms": round(statistics.median(ordered), 1),
            "p95_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))], 1),
            "max_ms": round(ordered[-1], 1)}


@contextmanager
def postgres_database(admin_url: str) -> Iterator[str]:
    import psycopg

    name = f"imagerec_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {name}")
    try:
        yield admin_url.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(admin_url, autocommit=True) as connection:
            connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@contextmanager
def worker(data_dir: Path, log_path: Path, settings: dict[str, str]) -> Iterator[None]:
    env = server_env(data_dir) | {f"IMAGEREC_{key.upper()}": value for key, value in settings.items()}
    with log_path.open("w") as log:
        name = f"bench-{os.getpid()}@{socket.gethostname()}"
        process = subprocess.Popen([sys.executable, "-m", "imagerec", "worker", "--name", name], cwd=REPO_ROOT,
                                   env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield
    finally:
        os.killpg(process.pid, signal.SIGQUIT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def _wait_for_worker(client: httpx.Client, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not client.get("/api/workers").json()["workers"]:
        if time.monotonic() > deadline:
            raise RuntimeError("the worker did not report in")
        time.sleep(0.2)


def submit_latencies(client: httpx.Client, archive: Path, submits: int) -> list[float]:
    latencies = []
    for index in range(submits):
        with archive.open("rb") as handle:
            answer = client.post("/api/datasets", data={"name": f"submit-{index}", "task": "detect"},
                                 files={"file": (archive.name, handle, "application/zip")})
        assert answer.status_code == 202, answer.text  # an import task (dataset_import_task_min_images=1)
        task = wait_finished(client, answer.json()["id"], poll=0.05)
        assert task["status"] == "succeeded", task
        created, started = (datetime.fromisoformat(task[key]) for key in ("created_at", "started_at"))
        latencies.append((started - created).total_seconds() * 1000)
        time.sleep(1.0)  # the ended task's child exits (interpreter teardown) before its slot is free again
    return latencies


def measure_submits(work: Path, args: argparse.Namespace) -> dict:
    archive = write_dataset_zip("detect", work / "small.zip", train=4, val=2, imgsz=64)
    results = {}
    with running_server(work / "local", work / "local.log", dataset_import_task_min_images="1") as client:
        results["local (SQLite)"] = _quantiles(submit_latencies(client, archive, args.submits))
    with postgres_database(args.postgres) as url:
        settings = {"executor": "celery", "broker_url": args.redis, "database_url": url,
                    "default_queue": f"bench-{uuid.uuid4().hex[:8]}", "dataset_import_task_min_images": "1"}
        with running_server(work / "celery", work / "celery.log", **settings) as client:
            with worker(work / "celery", work / "worker.log", settings):
                _wait_for_worker(client)
                results["celery (PostgreSQL, Redis, 1 worker)"] = _quantiles(
                    submit_latencies(client, archive, args.submits))
    return results


def reads_during_training(client: httpx.Client, archive: Path, args: argparse.Namespace) -> dict:
    dataset = register_zip(client, archive, name="reads", task="detect")
    fill_tasks(client, dataset["id"], 50)
    body = {"dataset_id": dataset["id"], "architecture": "yolov8n", "epochs": args.epochs, "imgsz": 128,
            "batch": 8, "device": "cpu", "workers": 0}
    task = client.post("/api/training/regular", json=body).json()
    while client.get(f"/api/tasks/{task['id']}").json()["status"] != "running":
        time.sleep(0.05)
    result = burst(str(client.base_url), args.readers, args.requests)
    result["training_still_running"] = client.get(f"/api/tasks/{task['id']}").json()["status"] == "running"
    client.post(f"/api/tasks/{task['id']}/cancel")
    wait_finished(client, task["id"])
    return result


def measure_reads(work: Path, args: argparse.Namespace) -> dict:
    archive = write_dataset_zip("detect", work / "train.zip", train=64, val=16, imgsz=128)
    results: dict[str, list[dict]] = {"SQLite": [], "PostgreSQL": []}
    for round_ in range(args.rounds):
        with running_server(work / f"reads-sqlite-{round_}", work / "reads-sqlite.log") as client:
            results["SQLite"].append(reads_during_training(client, archive, args))
        with postgres_database(args.postgres) as url:
            with running_server(work / f"reads-pg-{round_}", work / "reads-pg.log", database_url=url) as client:
                results["PostgreSQL"].append(reads_during_training(client, archive, args))
    return results


def measure_sending(work: Path, args: argparse.Namespace) -> dict:
    from imagerec.config import Settings
    from imagerec.executor.celery_app import RUN_TASK, make_celery

    queue = f"bench-send-{uuid.uuid4().hex[:8]}"
    app = make_celery(Settings(broker_url=args.redis, default_queue=queue, data_dir=work / "send"))
    started = time.perf_counter()
    for task_id in range(args.messages):
        app.send_task(RUN_TASK, args=[task_id], queue=queue)
    seconds = time.perf_counter() - started
    with app.connection_for_write() as connection:
        connection.default_channel.queue_purge(queue)
    return {"messages": args.messages, "seconds": round(seconds, 3),
            "per_second": round(args.messages / seconds), "ms_each": round(1000 * seconds / args.messages, 3)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submits", type=int, default=20)
    parser.add_argument("--readers", type=int, default=100)
    parser.add_argument("--requests", type=int, default=4, help="GETs per reader")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2, help="reads: SQLite and PostgreSQL in turn, this often")
    postgres = os.environ.get("IMAGEREC_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--postgres", default=postgres.replace("+psycopg", ""), help="an admin URL (makes databases)")
    parser.add_argument("--redis", default=os.environ.get("IMAGEREC_TEST_REDIS_URL", "redis://127.0.0.1:6379") + "/14")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "benchmarks" / "out" / "scale_out.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="imagerec-scale-out-") as tmp:
        work = Path(tmp)
        result = {"submit_to_running": measure_submits(work, args), "reads_during_training": measure_reads(work, args),
                  "sending": measure_sending(work, args)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"{'submit → running':<40}{'n':>4}{'p50 ms':>10}{'p95 ms':>10}{'max ms':>10}")
    for name, row in result["submit_to_running"].items():
        print(f"{name:<40}{row['n']:>4}{row['p50_ms']:>10}{row['p95_ms']:>10}{row['max_ms']:>10}")
    print(f"\n{'GET /api/training/tasks, ' + str(args.readers) + ' readers':<40}{'n':>6}{'p50 ms':>10}{'p99 ms':>10}"
          f"{'ok':>6}{'503':>6}{'5xx':>6}  training ran throughout")
    for name, rows in result["reads_during_training"].items():
        for round_, row in enumerate(rows, 1):
            print(f"{name + ' (round ' + str(round_) + ')':<40}{row['n']:>6}{row['p50_ms']:>10}{row['p99_ms']:>10}"
                  f"{row['ok']:>6}{row['503']:>6}{row['server_errors']:>6}  {row['training_still_running']}")
    sent = result["sending"]
    print(f"\nsent {sent['messages']} messages in {sent['seconds']} s: {sent['per_second']}/s "
          f"({sent['ms_each']} ms each)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
