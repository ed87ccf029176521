"""Asynchronous calls (CSC operationMode "A") are kept as calls and run from the job queue, so a
run cut off by a crash is resumed by another process: the call's runner, the caller's token, the
attempts made and the running attempt's lease.

Revision ID: 0019_deferred_calls
Revises: 0018_batch_callbacks
"""
from alembic import op
import sqlalchemy as sa


revision = '0019_deferred_calls'
down_revision = '0018_batch_callbacks'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("deferred_results", sa.Column("kind", sa.String(40), nullable=True))
    op.add_column("deferred_results", sa.Column("token_hash", sa.String(64), nullable=True))
    op.add_column("deferred_results", sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("deferred_results", sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_deferred_results_status", "deferred_results", ["status"])


def downgrade() -> None:
    op.drop_index("ix_deferred_results_status", table_name="deferred_results")
    with op.batch_alter_table("deferred_results") as table:
        for name in ("lease_until", "attempts", "token_hash", "kind"):
            table.drop_column(name)
