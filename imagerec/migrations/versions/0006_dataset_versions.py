"""dataset versions: a version number, its parent and a content hash

A registered dataset is immutable; a new version is a new row with the same name, ``version`` one higher and
``parent_id`` pointing at the version it was made from. The live-name index now covers (name, version). No
foreign key on ``parent_id``: rows are tombstoned, never removed, so a parent's row always exists, and adding a
constraint would mean rebuilding the table on SQLite (see 0003).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 14:00:00.000000
"""

from alembic import op

from imagerec.migrations.batch import alter_table
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

LIVE = sa.text("deleted_at IS NULL")


def upgrade() -> None:
    op.add_column('datasets', sa.Column('version', sa.Integer(), nullable=False, server_default='1'))
    op.add_column('datasets', sa.Column('parent_id', sa.Integer(), nullable=True))
    op.add_column('datasets', sa.Column('content_hash', sa.String(length=64), nullable=True))
    op.drop_index('uq_datasets_live_name', table_name='datasets')
    op.create_index('uq_datasets_live_name', 'datasets', ['name', 'version'], unique=True, sqlite_where=LIVE,
                    postgresql_where=LIVE)


def downgrade() -> None:
    op.drop_index('uq_datasets_live_name', table_name='datasets')
    op.execute("UPDATE datasets SET deleted_at = CURRENT_TIMESTAMP WHERE version > 1 AND deleted_at IS NULL")
    op.create_index('uq_datasets_live_name', 'datasets', ['name'], unique=True, sqlite_where=LIVE,
                    postgresql_where=LIVE)
    with alter_table('datasets') as batch:
        batch.drop_column('content_hash')
        batch.drop_column('parent_id')
        batch.drop_column('version')
