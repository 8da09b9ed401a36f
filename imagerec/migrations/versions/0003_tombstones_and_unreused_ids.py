"""tombstones (deleted_at) and ids that are never reused

Datasets and models are no longer deleted but marked: ``deleted_at`` on both, and the dataset name is unique
among live rows only (a partial index), so a deleted dataset's name can be registered again.

SQLite hands out max(rowid)+1 for an ``INTEGER PRIMARY KEY``, so the id of the newest row, once deleted, was
given to the next one (Label Studio's ``imagerec-model-5`` silently became another model). Only a ``CREATE
TABLE`` can say ``AUTOINCREMENT``, so on SQLite the three tables whose ids are shown to users are rebuilt (rows,
indexes and foreign keys kept; ``sqlite_sequence`` starts at the highest id copied). An id deleted before this
revision can still be handed out once more: nothing records it. PostgreSQL sequences never hand an id out
twice, so there only the columns and the index change.

The rebuild drops the old tables: ``imagerec.migrations.env`` turns SQLite's foreign-key enforcement off for
the run (else the drop would cascade to task logs and null every model's lineage) and checks it afterwards.
SQLAlchemy does not reflect ``AUTOINCREMENT``: a later batch migration that rebuilds one of these tables must
pass ``table_kwargs={"sqlite_autoincrement": True}`` again, or it silently drops it
(``tests/migrations`` checks the head schema).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 10:00:00.000000
"""

from alembic import op

from imagerec.migrations.batch import alter_table
import sqlalchemy as sa
import imagerec.db


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

LIVE = sa.text("deleted_at IS NULL")


_batch = alter_table


def upgrade() -> None:
    with _batch("tasks", autoincrement=True):
        pass
    with _batch("datasets", autoincrement=True) as batch_op:
        batch_op.add_column(sa.Column('deleted_at', imagerec.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.drop_constraint('uq_datasets_name', type_='unique')
        batch_op.create_index('uq_datasets_live_name', ['name'], unique=True, sqlite_where=LIVE,
                              postgresql_where=LIVE)
    with _batch("model_versions", autoincrement=True) as batch_op:
        batch_op.add_column(sa.Column('deleted_at', imagerec.db.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    """Tombstones become deleted rows again (what a delete did before); ids may then be reused."""
    op.execute("UPDATE model_versions SET parent_id = NULL WHERE parent_id IN "
               "(SELECT id FROM model_versions WHERE deleted_at IS NOT NULL)")
    op.execute("UPDATE model_versions SET dataset_id = NULL WHERE dataset_id IN "
               "(SELECT id FROM datasets WHERE deleted_at IS NOT NULL)")
    op.execute("DELETE FROM model_versions WHERE deleted_at IS NOT NULL")
    op.execute("DELETE FROM datasets WHERE deleted_at IS NOT NULL")
    with _batch("model_versions", autoincrement=False) as batch_op:
        batch_op.drop_column('deleted_at')
    with _batch("datasets", autoincrement=False) as batch_op:
        batch_op.drop_index('uq_datasets_live_name', sqlite_where=LIVE, postgresql_where=LIVE)
        batch_op.drop_column('deleted_at')
        batch_op.create_unique_constraint('uq_datasets_name', ['name'])
    with _batch("tasks", autoincrement=False):
        pass
