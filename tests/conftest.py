"""Fixtures: each test gets a fresh data dir, database and app (with its executor running).

Every test that trains carries the ``training`` marker, so ``pytest -m "not training"`` is the fast suite: tests
that use the ``trained_models`` fixture get it here, and a test without it that starts a training task fails.

The database is SQLite unless a test asks for ``database``: a module marked ``both_databases`` runs each of its
database-touching tests on SQLite and on PostgreSQL (``tests/databases.py``); ``IMAGEREC_TEST_DATABASE=postgresql``
runs every test on PostgreSQL.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from fastapi.testclient import TestClient

from imagerec.config import Settings
from tests import databases
from tests.helpers import ADMIN_KEY, api_client

if TYPE_CHECKING:  # imported lazily below: it pulls in Ultralytics
    from tests.trained_models import TrainedModels

TRAINING_FIXTURES = {"trained_models"}


@pytest.fixture(autouse=True)
def _admin_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every Settings a test builds (and every server it starts) has the test admin key its clients send."""
    monkeypatch.setenv("IMAGEREC_ADMIN_KEY", ADMIN_KEY)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "database" in metafunc.fixturenames and metafunc.definition.get_closest_marker("both_databases"):
        metafunc.parametrize("database", ["sqlite", "postgresql"])


def pytest_sessionfinish(session: pytest.Session) -> None:
    databases.drop_template()


@pytest.fixture
def database() -> str:
    return os.environ.get("IMAGEREC_TEST_DATABASE", "sqlite")


@pytest.fixture
def database_url(database: str) -> Iterator[str | None]:
    """None (SQLite in the data dir) or the URL of a fresh PostgreSQL database of this test's own."""
    if database == "sqlite":
        yield None
        return
    with databases.fresh_postgres_database() as url:
        yield url


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if TRAINING_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.training)


@pytest.fixture(autouse=True)
def _trainings_carry_the_marker(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    if request.node.get_closest_marker("training"):
        yield
        return
    from imagerec.db import read_session
    from imagerec.executor.local import LocalExecutor
    from imagerec.tasks import repository
    from imagerec.tasks.models import TaskKind

    spawn = LocalExecutor._spawn
    trainings: list[int] = []

    def noting_trainings(executor: LocalExecutor, task_id: int) -> None:
        with read_session(executor.session_factory) as session:
            if repository.get(session, task_id).kind == TaskKind.training:
                trainings.append(task_id)
        spawn(executor, task_id)

    monkeypatch.setattr(LocalExecutor, "_spawn", noting_trainings)
    yield
    if trainings:
        pytest.fail(f"this test ran training tasks {trainings}: mark it with @pytest.mark.training")


@pytest.fixture
def allowed_root(tmp_path: Path) -> Path:
    root = tmp_path / "allowed"
    root.mkdir()
    return root


@pytest.fixture
def settings(tmp_path: Path, allowed_root: Path, database_url: str | None) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        allowed_roots=[allowed_root],
        executor_poll_seconds=0.2,
        cancel_grace_seconds=20,
        default_workers=0,
        training_plots=False,  # Ultralytics' plots cost every epoch; tests/training/test_artifacts.py turns them on
    )


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with api_client(settings) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def trained_models(tmp_path_factory) -> TrainedModels:
    """``trained_models("detect")`` → a tiny model that learned the synthetic shapes (trained once per session)."""
    from tests.trained_models import TrainedModels

    return TrainedModels(tmp_path_factory.mktemp("trained-models"))
