"""Shared by the dataset tests: build (and break) synthetic datasets, upload them, check nothing was left behind."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient

from imagerec.config import Settings
from imagerec.datasets.synthetic import write_dataset, zip_folder

SMALL = {"train": 4, "val": 2, "imgsz": 32}


def dataset_zip(tmp_path: Path, task: str, *, mutate: Callable[[Path], None] | None = None, **sizes) -> Path:
    """A synthetic dataset for ``task`` zipped without a top folder, after ``mutate(folder)`` if given."""
    folder = write_dataset(task, tmp_path / f"src-{task}", **{**SMALL, **sizes})
    if mutate is not None:
        mutate(folder)
    return zip_folder(folder, tmp_path / f"{task}.zip")


def upload(client: TestClient, content: bytes | Path, *, name: str = "shapes", task: str = "detect"):
    data = content.read_bytes() if isinstance(content, Path) else content
    return client.post(
        "/api/datasets", data={"name": name, "task": task}, files={"file": ("dataset.zip", data, "application/zip")}
    )


def stored_folders(settings: Settings) -> list[Path]:
    return sorted((settings.data_dir / "datasets").iterdir())


def assert_nothing_registered(client: TestClient, settings: Settings) -> None:
    """No row, no dataset folder, no leftover work folder."""
    assert client.get("/api/datasets").json() == []
    assert stored_folders(settings) == []
    assert list((settings.data_dir / "tmp").iterdir()) == []


def files_under(folder: Path) -> list[str]:
    return sorted(path.relative_to(folder).as_posix() for path in folder.rglob("*") if not path.is_dir())
