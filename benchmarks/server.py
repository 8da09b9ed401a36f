"""A real ``uvicorn main:app`` in a subprocess, for benchmarks that talk to the service as users do."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from startup import REPO_ROOT, free_port, server_env, stop, wait_healthy

BENCHMARK_KEY = "irk-benchmark-admin-key"  # the benchmark servers' admin key (IMAGEREC_ADMIN_KEY)
AUTH = {"Authorization": f"Bearer {BENCHMARK_KEY}"}


@contextmanager
def running_server(data_dir: Path, log_path: Path, **settings: str) -> Iterator[httpx.Client]:
    """``uvicorn main:app`` on ``data_dir``; ``settings`` become ``IMAGEREC_<NAME>`` variables."""
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "main:app", "--host", "127.0.0.1", "--port", str(port),
               "--log-level", "warning"]
    defaults = {"executor_poll_seconds": "0.2", "default_workers": "0", "admin_key": BENCHMARK_KEY}
    env = server_env(data_dir) | {f"IMAGEREC_{name.upper()}": value for name, value in (defaults | settings).items()}
    with log_path.open("w") as log:
        process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_healthy(process, f"http://127.0.0.1:{port}/health", time.monotonic() + 60)
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120, headers=AUTH) as client:
                yield client
        finally:
            stop(process)


def register_zip(client: httpx.Client, archive: Path, *, name: str, task: str) -> dict:
    with archive.open("rb") as handle:
        response = client.post("/api/datasets", data={"name": name, "task": task},
                               files={"file": (archive.name, handle, "application/zip")})
    response.raise_for_status()
    return response.json()


def wait_finished(client: httpx.Client, task_id: int, poll: float = 0.1) -> dict:
    while True:
        task = client.get(f"/api/tasks/{task_id}").json()
        if task["status"] not in ("queued", "running"):
            return task
        time.sleep(poll)
