"""What several migrations share: altering a table the way each database can."""

from __future__ import annotations

from alembic import op


def alter_table(table: str, *, autoincrement: bool = True):
    """``op.batch_alter_table`` that copies the table on SQLite (the only way it drops a column or keeps
    AUTOINCREMENT) and alters it in place elsewhere: on PostgreSQL a copy would drop a primary key that other
    tables' foreign keys depend on."""
    if op.get_bind().dialect.name != "sqlite":
        return op.batch_alter_table(table)
    return op.batch_alter_table(table, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement})
