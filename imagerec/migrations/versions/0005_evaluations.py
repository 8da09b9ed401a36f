"""evaluations and their per-image analysis

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 01:00:00.000000
"""

from alembic import op
import sqlalchemy as sa
import imagerec.db


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'evaluations',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('task_id', sa.Integer(), nullable=True),
        sa.Column('model_id', sa.Integer(), nullable=False),
        sa.Column('dataset_id', sa.Integer(), nullable=True),
        sa.Column('split', sa.String(length=8), nullable=False),
        sa.Column('vision_task', sa.String(length=16), nullable=False),
        sa.Column('source', sa.String(length=16), nullable=False),
        sa.Column('params', sa.JSON(), nullable=False),
        sa.Column('recorded_status', sa.String(length=16), nullable=False),
        sa.Column('classes', sa.JSON(), nullable=True),
        sa.Column('metrics', sa.JSON(), nullable=True),
        sa.Column('label_issues', sa.JSON(), nullable=True),
        sa.Column('images', sa.Integer(), nullable=True),
        sa.Column('files_dir', sa.String(length=500), nullable=True),
        sa.Column('created_at', imagerec.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('finished_at', imagerec.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column('created_by', sa.String(length=100), nullable=True),
        sa.ForeignKeyConstraint(['task_id'], ['tasks.id'], name=op.f('fk_evaluations_task_id_tasks'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['model_id'], ['model_versions.id'], name=op.f('fk_evaluations_model_id_model_versions')),
        sa.ForeignKeyConstraint(['dataset_id'], ['datasets.id'], name=op.f('fk_evaluations_dataset_id_datasets'),
                                ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_evaluations')),
        sqlite_autoincrement=True,
    )
    op.create_index('ix_evaluations_task_id', 'evaluations', ['task_id'])
    op.create_index('ix_evaluations_model_dataset', 'evaluations', ['model_id', 'dataset_id', 'split'])
    op.create_table(
        'evaluation_images',
        sa.Column('evaluation_id', sa.Integer(), nullable=False),
        sa.Column('image_id', sa.Integer(), nullable=False),
        sa.Column('image', sa.String(length=1000), nullable=False),
        sa.Column('tp', sa.Integer(), nullable=False),
        sa.Column('fp', sa.Integer(), nullable=False),
        sa.Column('fn', sa.Integer(), nullable=False),
        sa.Column('wrong_class', sa.Integer(), nullable=False),
        sa.Column('localisation', sa.Integer(), nullable=False),
        sa.Column('errors', sa.Integer(), nullable=False),
        sa.Column('score', sa.Float(), nullable=False),
        sa.Column('per_class', sa.JSON(), nullable=False),
        sa.Column('detail', sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(['evaluation_id'], ['evaluations.id'],
                                name=op.f('fk_evaluation_images_evaluation_id_evaluations'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('evaluation_id', 'image_id', name=op.f('pk_evaluation_images')),
    )
    op.create_index('ix_evaluation_images_errors', 'evaluation_images', ['evaluation_id', 'errors'])


def downgrade() -> None:
    op.drop_table('evaluation_images')
    op.drop_table('evaluations')
