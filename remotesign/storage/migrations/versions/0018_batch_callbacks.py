"""Batches announce their end by webhook: the callback columns signature requests have
(core/callbacks.py schedules both).

Revision ID: 0018_batch_callbacks
Revises: 0017_batches
"""
from alembic import op
import sqlalchemy as sa


revision = '0018_batch_callbacks'
down_revision = '0017_batches'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # as signature_requests has them (0012): plain ADD COLUMNs, which SQLite and PostgreSQL do
    # without copying the table
    op.add_column("batches", sa.Column("callback_url", sa.Text(), nullable=True))
    op.add_column("batches", sa.Column("callback_status", sa.String(12), nullable=False, server_default="none"))
    op.add_column("batches", sa.Column("callback_attempts", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("batches", sa.Column("callback_next_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("batches", sa.Column("callback_error", sa.Text(), nullable=True))
    op.create_index("ix_batches_callback_status", "batches", ["callback_status"])


def downgrade() -> None:
    op.drop_index("ix_batches_callback_status", table_name="batches")
    with op.batch_alter_table("batches") as table:
        for name in ("callback_error", "callback_next_at", "callback_attempts", "callback_status", "callback_url"):
            table.drop_column(name)
