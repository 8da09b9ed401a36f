"""Every migration runs on SQLite and on PostgreSQL, both ways, and head is exactly what the models declare."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from imagerec.db import make_engine
from imagerec.migrations import alembic_config, upgrade
from imagerec.orm import Base

pytestmark = pytest.mark.both_databases


def _differences(url: str) -> list:
    engine = make_engine(url, pool_size=1)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()


def test_every_migration_runs_down_and_up_again_and_head_matches_the_models(settings):
    url = settings.sqlalchemy_url
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(url)
    assert _differences(url) == []
    command.downgrade(alembic_config(url), "base")
    command.upgrade(alembic_config(url), "head")
    assert _differences(url) == []
