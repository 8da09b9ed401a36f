from alembic import context

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
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # A batch rebuild drops the old table; with enforcement on, that drop deletes its rows first and
            # fires ON DELETE (task logs cascade away, lineage is nulled). SQLite ignores this pragma inside a
            # transaction, so it goes to the driver before Alembic begins one; the connection is disposed after.
            connection.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=True,  # SQLite alters tables by copy
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
            if sqlite and (broken := connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()):
                raise RuntimeError(f"the migration left rows whose foreign keys point nowhere: {broken}")
    engine.dispose()


run_migrations_online()
