"""Time from ``uvicorn main:app`` launch to the first healthy answer.

    python benchmarks/startup.py [--runs 5] [--out benchmarks/out/startup.json]

Each run starts a fresh server on a free port with its own empty ``IMAGEREC_DATA_DIR`` (so the database is
created and migrated every time, the worst case), polls ``GET /health`` until it answers 200, and stops it.
Standard library + httpx only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[1]
GOAL_SECONDS = 3.0
POLL_SECONDS = 0.01


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_env(data_dir: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("IMAGEREC_")}
    env["IMAGEREC_DATA_DIR"] = str(data_dir)
    return env


def wait_healthy(process: subprocess.Popen, url: str, deadline: float) -> None:
    with httpx.Client(timeout=1.0) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"server exited with code {process.returncode} before answering")
            try:
                if client.get(url).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(POLL_SECONDS)
    raise TimeoutError(f"no healthy answer from {url}")


def stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGINT)  # uvicorn's graceful shutdown runs the lifespan's exit
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def one_run(timeout: float) -> float:
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="imagerec-startup-") as data_dir:
        command = [sys.executable, "-m", "uvicorn", "main:app", "--host", "127.0.0.1", "--port", str(port)]
        started = time.monotonic()
        process = subprocess.Popen(
            command, cwd=REPO_ROOT, env=server_env(Path(data_dir)),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            wait_healthy(process, f"http://127.0.0.1:{port}/health", started + timeout)
            return time.monotonic() - started
        finally:
            stop(process)


def summarize(seconds: list[float]) -> dict:
    return {
        "runs": len(seconds),
        "seconds": [round(value, 4) for value in seconds],
        "min": round(min(seconds), 4),
        "median": round(statistics.median(seconds), 4),
        "max": round(max(seconds), 4),
        "goal": GOAL_SECONDS,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for one server")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "benchmarks" / "out" / "startup.json")
    args = parser.parse_args()
    seconds = []
    for index in range(args.runs):
        seconds.append(one_run(args.timeout))
        print(f"run {index + 1}/{args.runs}: {seconds[-1]:.3f} s", flush=True)
    result = summarize(seconds)
    print(f"min {result['min']:.3f} s  median {result['median']:.3f} s  max {result['max']:.3f} s  "
          f"(goal < {GOAL_SECONDS:.0f} s)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0 if result["median"] < GOAL_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
