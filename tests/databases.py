"""The databases a test can run on: SQLite in its data dir (the default) or a PostgreSQL database of its own.

PostgreSQL comes from ``IMAGEREC_TEST_POSTGRES_URL`` (``scripts/test-services.sh`` sets it: the machine's
server when it answers, else one it starts). Each test run migrates one template database to head; each test
gets a fresh copy of it (``CREATE DATABASE … TEMPLATE``, a file copy, much faster than migrating again), dropped
after the test. The names carry this run's id, so two runs on one server never meet.
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
RUN_ID = uuid.uuid4().hex[:8]
_numbers = itertools.count()
_template: str | None = None


def postgres_url() -> str:
    return os.environ.get("IMAGEREC_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)


def _with_database(url: str, name: str) -> str:
    return url.rsplit("/", 1)[0] + "/" + name


def _admin_execute(sql: str) -> None:
    import psycopg

    plain_url = postgres_url().replace("postgresql+psycopg://", "postgresql://")
    try:
        with psycopg.connect(plain_url, autocommit=True, connect_timeout=5) as connection:
            connection.execute(sql)
    except psycopg.OperationalError as error:
        pytest.fail(f"PostgreSQL at {plain_url} is not reachable ({error}); scripts/test-services.sh starts one")


def _template_name() -> str:
    global _template
    if _template is None:
        from imagerec.migrations import upgrade

        name = f"imagerec_{RUN_ID}_template"
        _admin_execute(f"CREATE DATABASE {name}")
        upgrade(_with_database(postgres_url(), name))
        _template = name
    return _template


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """The URL of a new database at the schema's head; dropped afterwards (its connections are cut)."""
    name = f"imagerec_{RUN_ID}_{next(_numbers)}"
    _admin_execute(f"CREATE DATABASE {name} TEMPLATE {_template_name()}")
    try:
        yield _with_database(postgres_url(), name)
    finally:
        _admin_execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def drop_template() -> None:
    if _template is not None:
        _admin_execute(f"DROP DATABASE IF EXISTS {_template} WITH (FORCE)")


def stored_text(settings, table: str) -> str:
    """Everything the database holds for ``table``, as text (column names and values; for SQLite, the whole
    database file too), to show that a secret never reached it in the clear."""
    from sqlalchemy import create_engine, text

    engine = create_engine(settings.sqlalchemy_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(text(f"SELECT * FROM {table}")).mappings().all()
    finally:
        engine.dispose()
    dumped = repr([dict(row) for row in rows])
    if settings.database_kind == "sqlite":
        dumped += (settings.data_dir / "imagerec.db").read_bytes().decode(errors="ignore")
    return dumped
