"""Fixtures: each test gets a fresh data dir, database and app (with its executor running)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from imagerec.app import create_app
from imagerec.config import Settings


@pytest.fixture
def allowed_root(tmp_path: Path) -> Path:
    root = tmp_path / "allowed"
    root.mkdir()
    return root


@pytest.fixture
def settings(tmp_path: Path, allowed_root: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        allowed_roots=[allowed_root],
        executor_poll_seconds=0.2,
        cancel_grace_seconds=20,
        default_workers=0,
    )


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def trained_models(tmp_path_factory) -> "TrainedModels":
    """``trained_models("detect")`` → a tiny model that learned the synthetic shapes (trained once per session)."""
    from tests.trained_models import TrainedModels

    return TrainedModels(tmp_path_factory.mktemp("trained-models"))
