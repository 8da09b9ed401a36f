"""Label Studio connections (URL and encrypted token) and per-project bindings

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 20:00:00.000000
"""

from alembic import op
import sqlalchemy as sa
import imagerec.db


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'labelstudio_connections',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('url', sa.String(length=500), nullable=False),
        sa.Column('token_encrypted', sa.Text(), nullable=False),
        sa.Column('token_kind', sa.String(length=16), nullable=False),
        sa.Column('created_at', imagerec.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('created_by', sa.String(length=100), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_labelstudio_connections')),
        sa.UniqueConstraint('url', name=op.f('uq_labelstudio_connections_url')),
        sqlite_autoincrement=True,
    )
    op.create_table(
        'labelstudio_projects',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('labelstudio_url', sa.String(length=500), nullable=False),
        sa.Column('project', sa.Integer(), nullable=False),
        sa.Column('task', sa.String(length=16), nullable=False),
        sa.Column('model_id', sa.Integer(), nullable=True),
        sa.Column('extra_params', sa.JSON(), nullable=False),
        sa.Column('label_config', sa.Text(), nullable=True),
        sa.Column('problem', sa.Text(), nullable=True),
        sa.Column('problem_at', imagerec.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column('dataset_id', sa.Integer(), nullable=True),
        sa.Column('last_task_id', sa.Integer(), nullable=True),
        sa.Column('decision', sa.JSON(), nullable=True),
        sa.Column('annotations_since_training', sa.Integer(), nullable=False, server_default='0'),
        sa.Column('updated_at', imagerec.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['model_id'], ['model_versions.id'],
                                name=op.f('fk_labelstudio_projects_model_id_model_versions'), ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['dataset_id'], ['datasets.id'],
                                name=op.f('fk_labelstudio_projects_dataset_id_datasets'), ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_labelstudio_projects')),
        sa.UniqueConstraint('labelstudio_url', 'project', name='uq_labelstudio_projects_url_project'),
        sqlite_autoincrement=True,
    )


def downgrade() -> None:
    op.drop_table('labelstudio_projects')
    op.drop_table('labelstudio_connections')
