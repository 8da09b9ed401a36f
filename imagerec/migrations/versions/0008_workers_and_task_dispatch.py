"""Workers, the deployment's data-dir token, and the columns the Celery executor dispatches tasks with

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 07:00:00.000000
"""

from alembic import op
import sqlalchemy as sa
import imagerec.db


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'workers',
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('host', sa.String(length=200), nullable=False),
        sa.Column('pid', sa.Integer(), nullable=False),
        sa.Column('queues', sa.JSON(), nullable=False),
        sa.Column('slots', sa.Integer(), nullable=False),
        sa.Column('gpus', sa.JSON(), nullable=False),
        sa.Column('version', sa.String(length=32), nullable=False),
        sa.Column('started_at', imagerec.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('heartbeat_at', imagerec.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('name', name=op.f('pk_workers')),
    )
    op.create_index(op.f('ix_workers_heartbeat_at'), 'workers', ['heartbeat_at'], unique=False)
    op.create_table(
        'deployment',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('data_dir_token', sa.String(length=64), nullable=False),
        sa.Column('created_at', imagerec.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_deployment')),
    )
    with op.batch_alter_table('tasks') as batch_op:
        batch_op.add_column(sa.Column('queue', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('message_id', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('dispatched_at', imagerec.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('cancel_requested_at', imagerec.db.UTCDateTime(timezone=True),
                                      nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('tasks') as batch_op:
        batch_op.drop_column('cancel_requested_at')
        batch_op.drop_column('dispatched_at')
        batch_op.drop_column('message_id')
        batch_op.drop_column('queue')
    op.drop_table('deployment')
    op.drop_index(op.f('ix_workers_heartbeat_at'), table_name='workers')
    op.drop_table('workers')
