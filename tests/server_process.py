"""A real ``uvicorn main:app`` in a subprocess, for tests that need what TestClient cannot give: concurrent
clients over real sockets, a server killed with SIGKILL and started again on the same data dir, a clean HOME."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.helpers import ADMIN_KEY, AUTH

REPO_ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def clean_env(**variables: str) -> dict[str, str]:
    """What a user's new shell holds (no IMAGEREC_ or library variables this test process may have set), plus
    ``variables``."""
    env = {key: os.environ[key] for key in ("PATH", "LANG", "HOME", "TMPDIR") if key in os.environ}
    return env | variables


class ServerProcess:
    """``start`` / ``kill`` / ``stop`` a server on ``data_dir``; ``client`` talks to it while it runs."""

    def __init__(self, data_dir: Path, log_path: Path, *, env: dict[str, str] | None = None,
                 settings: dict[str, str] | None = None) -> None:
        defaults = {"IMAGEREC_EXECUTOR_POLL_SECONDS": "0.2", "IMAGEREC_DEFAULT_WORKERS": "0",
                    "IMAGEREC_ADMIN_KEY": ADMIN_KEY}
        self.env = (env or clean_env()) | defaults | {"IMAGEREC_DATA_DIR": str(data_dir)} | {
            f"IMAGEREC_{name.upper()}": value for name, value in (settings or {}).items()}
        self.log_path = log_path
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        self.client: httpx.Client | None = None

    def start(self, *, timeout: float = 60.0) -> httpx.Client:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "main:app", "--host", "127.0.0.1", "--port", str(self.port),
             "--log-level", "warning"], cwd=REPO_ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.client = httpx.Client(base_url=self.base_url, timeout=120, headers=AUTH)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the server exited during start-up:\n{self.log_path.read_text()[-3000:]}")
            try:
                if self.client.get("/health").status_code == 200:
                    return self.client
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"the server did not answer /health within {timeout} s")

    def kill(self) -> None:
        """What a crash does: SIGKILL, no shutdown code runs."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)
        self.client.close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # uvicorn's graceful shutdown runs the lifespan's exit
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.client is not None:
            self.client.close()

    def __enter__(self) -> ServerProcess:
        self.start()
        return self

    def __exit__(self, *_exc) -> None:
        self.stop()

