"""The service answers health and docs, and starting it stays light: no torch, no ultralytics."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from imagerec import __version__

pytestmark = pytest.mark.both_databases

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_health_reports_version_database_and_executor(client: TestClient, database: str) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["version"] == __version__
    assert body["database"] == database
    assert body["executor"]["kind"] == "local"
    assert body["executor"]["running"] is True


def test_docs_and_schema_are_served(client: TestClient) -> None:
    for url in ("/docs", "/redoc", "/openapi.json"):
        assert client.get(url).status_code == 200, url
    paths = client.get("/openapi.json").json()["paths"]
    assert "/health" in paths
    assert "/api/training/select-local-file" in paths


STARTUP_PROBE = textwrap.dedent(
    """
    import sys
    from fastapi.testclient import TestClient
    from imagerec.app import create_app
    from imagerec.config import Settings

    with TestClient(create_app(Settings(data_dir=sys.argv[1])), base_url="http://localhost") as client:
        status = client.get("/health").status_code
    heavy = sorted(name for name in ("torch", "ultralytics") if name in sys.modules)
    print(f"health={status} heavy={','.join(heavy) or 'none'}")
    """
)


def test_startup_and_lifespan_import_neither_torch_nor_ultralytics(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("IMAGEREC_")}
    result = subprocess.run(
        [sys.executable, "-c", STARTUP_PROBE, str(tmp_path / "data")],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "health=200 heavy=none"
