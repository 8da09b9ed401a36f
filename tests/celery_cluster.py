"""A real deployment on one machine: the API (uvicorn, ``IMAGEREC_EXECUTOR=celery``), ``imagerec worker``
processes, Redis as the broker and a PostgreSQL database of the test's own.

Redis comes from ``IMAGEREC_TEST_REDIS_URL`` (``scripts/test-services.sh`` sets it). Each test run uses its own
Redis db (chosen from the run id) and each cluster its own queue name, so no message crosses between tests.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.databases import RUN_ID
from tests.server_process import REPO_ROOT, ServerProcess, clean_env

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379"
LEASE_SECONDS = 6.0  # short, so a lost worker is noticed within a test


def redis_url() -> str:
    base = os.environ.get("IMAGEREC_TEST_REDIS_URL", DEFAULT_REDIS_URL).rstrip("/")
    return f"{base}/{1 + int(RUN_ID, 16) % 15}"


class WorkerProcess:
    """``imagerec worker`` in its own process group (a kill takes its pool processes; task children die with
    their pool process)."""

    def __init__(self, cluster: Cluster, name: str, *args: str) -> None:
        self.name = f"{name}@{RUN_ID}"
        self.log_path = cluster.tmp_path / f"worker-{name}.log"
        self.args = ["--name", self.name, *args]
        self.env = cluster.env
        self.process: subprocess.Popen | None = None

    def start(self) -> WorkerProcess:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "imagerec", "worker", *self.args], cwd=REPO_ROOT,
                                            env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        return self

    def kill(self) -> None:
        """kill -9 of the worker and its pool processes, as when its machine dies."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGQUIT)  # Celery's cold shutdown: stop now
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


class Cluster:
    def __init__(self, tmp_path: Path, database_url: str, **settings: str) -> None:
        self.tmp_path = tmp_path
        self.queue = f"imagerec-test-{RUN_ID}-{time.monotonic_ns()}"
        values = {"executor": "celery", "broker_url": redis_url(), "database_url": database_url,
                  "default_queue": self.queue, "worker_lease_seconds": str(LEASE_SECONDS),
                  "worker_heartbeat_seconds": "1", "executor_poll_seconds": "0.2", "default_workers": "0",
                  "data_dir": str(tmp_path / "data")} | settings
        self.env = clean_env(**{f"IMAGEREC_{key.upper()}": value for key, value in values.items()})
        self.api = ServerProcess(tmp_path / "data", tmp_path / "api.log", env=self.env)
        self.workers: list[WorkerProcess] = []

    @property
    def client(self) -> httpx.Client:
        return self.api.client

    def start_workers(self, *specs: tuple[str, ...], timeout: float = 60.0) -> list[WorkerProcess]:
        started = [WorkerProcess(self, *spec).start() for spec in specs]
        self.workers += started
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            live = {row["name"] for row in self.client.get("/api/workers").json()["workers"]}
            if all(f"celery:{worker.name}" in live for worker in started):
                return started
            for worker in started:
                if worker.process.poll() is not None:
                    raise AssertionError(f"worker {worker.name} exited:\n{worker.log()[-3000:]}")
            time.sleep(0.2)
        raise AssertionError("workers did not report in: " + "\n".join(w.log()[-2000:] for w in started))

    def __enter__(self) -> Cluster:
        self.api.start()
        return self

    def __exit__(self, *_exc) -> None:
        for worker in self.workers:
            worker.stop()
        self.api.stop()
