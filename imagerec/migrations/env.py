from alembic import context
from sqlalchemy import pool

from imagerec.db import make_engine
from imagerec.orm import Base


def _database_url() -> str:
    url = context.config.attributes.get("database_url")
    if url is None:  # the alembic CLI: use the server's own settings
        from imagerec.config import Settings

        url = Settings().sqlalchemy_url
    return url


def run_migrations_online() -> None:
    engine = make_engine(_database_url())
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=True,  # SQLite alters tables by copy
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations_online()
