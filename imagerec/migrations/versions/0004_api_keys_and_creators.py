"""api keys, and the key that created each task, dataset and model

Keys are stored as a public lookup part and the sha256 of their secret. ``created_by`` holds the creating key's
name (a name, not a foreign key: the record outlives the key). Columns are added with ALTER TABLE, so the tables
that 0003 rebuilt keep their AUTOINCREMENT.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 22:00:00.000000
"""

from alembic import op

from imagerec.migrations.batch import alter_table
import sqlalchemy as sa
import imagerec.db


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

CREATOR_TABLES = ("tasks", "datasets", "model_versions")


def upgrade() -> None:
    op.create_table(
        'api_keys',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('lookup', sa.String(length=32), nullable=False),
        sa.Column('secret_hash', sa.String(length=64), nullable=False),
        sa.Column('scopes', sa.JSON(), nullable=False),
        sa.Column('created_by', sa.String(length=100), nullable=True),
        sa.Column('created_at', imagerec.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('expires_at', imagerec.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column('last_used_at', imagerec.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column('revoked_at', imagerec.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_api_keys')),
        sa.UniqueConstraint('lookup', name=op.f('uq_api_keys_lookup')),
        sa.UniqueConstraint('name', name=op.f('uq_api_keys_name')),
        sqlite_autoincrement=True,
    )
    for table in CREATOR_TABLES:
        op.add_column(table, sa.Column('created_by', sa.String(length=100), nullable=True))


def downgrade() -> None:
    for table in CREATOR_TABLES:
        with alter_table(table) as batch:
            batch.drop_column('created_by')
    op.drop_table('api_keys')
