"""The ``imagerec`` command as a user runs it: installed on the venv's PATH, from any folder, writing the demo data
into the data dir that the server reads (``scripts/setup.sh`` installs it; see the README's quick start)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from imagerec import cli
from imagerec.config import Settings
from imagerec.datasets import synthetic
from imagerec.training.schemas import TrainingRequest

REPO_ROOT = Path(__file__).resolve().parents[2]
CONSOLE_SCRIPT = Path(sys.executable).parent / "imagerec"


def _run(command: list[str], *, cwd: Path, data_dir: Path) -> subprocess.CompletedProcess:
    env = {name: value for name, value in os.environ.items() if not name.startswith("IMAGEREC_")}
    env["IMAGEREC_DATA_DIR"] = str(data_dir)
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def _upload(client: TestClient, archive: Path) -> dict:
    with archive.open("rb") as handle:
        response = client.post("/api/datasets", data={"name": "demo", "task": "detect"},
                               files={"file": (archive.name, handle, "application/zip")})
    assert response.status_code == 201, response.text
    return response.json()


def test_demo_data_from_another_folder_writes_the_readme_zip_into_the_data_dir(
        tmp_path: Path, settings: Settings, client: TestClient) -> None:
    assert CONSOLE_SCRIPT.exists(), f"{CONSOLE_SCRIPT} is missing: scripts/setup.sh installs the project (-e .)"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    result = _run([str(CONSOLE_SCRIPT), "demo-data"], cwd=elsewhere, data_dir=settings.data_dir)

    assert result.returncode == 0, result.stderr
    archive = settings.data_dir / "demo" / "demo-detect.zip"
    assert result.stdout.strip() == str(archive)
    assert list(elsewhere.iterdir()) == []  # nothing left in the folder it ran from
    summary = _upload(client, archive)  # the server takes it as the README's next step does
    assert summary["class_names"] == synthetic.class_names("detect")
    assert summary["splits"]["train"]["images"] == synthetic.DEMO_SIZES["train"]
    assert summary["splits"]["val"]["images"] == synthetic.DEMO_SIZES["val"]
    assert summary["warnings"] == []


@pytest.mark.parametrize("out_name", ["mine.zip", "mine"])
def test_python_m_imagerec_demo_data_writes_the_out_path(tmp_path: Path, out_name: str) -> None:
    out = tmp_path / "picked" / out_name
    data_dir = tmp_path / "data"

    result = _run([sys.executable, "-m", "imagerec", "demo-data", "--task", "segment", "--out", str(out),
                   "--train", "3", "--val", "2", "--imgsz", "64", "--seed", "4"], cwd=tmp_path, data_dir=data_dir)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(out)
    if out.suffix == ".zip":
        members = zipfile.ZipFile(out).namelist()
    else:
        members = [path.relative_to(out).as_posix() for path in out.rglob("*") if path.is_file()]
    assert "data.yaml" in members
    assert len([m for m in members if m.startswith("images/train/") and m.endswith(".png")]) == 3
    assert len([m for m in members if m.startswith("images/val/")]) == 2
    assert not data_dir.exists()  # an explicit --out is the only thing written


def test_bad_options_exit_2_with_the_generators_message(tmp_path: Path, capsys) -> None:
    status = cli.main(["demo-data", "--out", str(tmp_path / "x.zip"), "--classes", "hexagon"])

    assert status == 2
    assert "unknown shape 'hexagon'" in capsys.readouterr().err
    assert not (tmp_path / "x.zip").exists()


def test_the_synthetic_modules_own_cli_still_writes_its_small_default(tmp_path: Path) -> None:
    out = tmp_path / "small.zip"

    synthetic.main(["--task", "detect", "--out", str(out), "--zip"])

    images = [m for m in zipfile.ZipFile(out).namelist() if m.startswith("images/")]
    assert len(images) == 16 + 8  # its defaults, which other scripts rely on, are not the demo's


def test_the_readme_training_request_is_valid_and_uses_its_lr0() -> None:
    quick_start = (REPO_ROOT / "README.md").read_text().split("## Quick start", 1)[1]
    body = re.search(r"/api/training/regular .*?-d '(\{.*?\})'", quick_start, re.S)
    assert body, "the quick start has no POST /api/training/regular -d '{…}'"

    request = TrainingRequest.model_validate(json.loads(body.group(1)))

    assert request.optimizer != "auto"  # with auto, Ultralytics ignores lr0
    assert request.imgsz == synthetic.DEMO_SIZES["imgsz"]
