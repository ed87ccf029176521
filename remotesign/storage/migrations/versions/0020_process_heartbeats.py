"""Serving processes' heartbeats (storage/liveness.py): a lease of a process on another host (or
of a container that was restarted) is taken over once that process went silent, not only when
the lease runs out.

Revision ID: 0020_process_heartbeats
Revises: 0019_deferred_calls
"""
from alembic import op
import sqlalchemy as sa


revision = '0020_process_heartbeats'
down_revision = '0019_deferred_calls'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "process_heartbeats",
        sa.Column("process", sa.String(100), primary_key=True),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_process_heartbeats_last_seen", "process_heartbeats", ["last_seen"])


def downgrade() -> None:
    op.drop_index("ix_process_heartbeats_last_seen", table_name="process_heartbeats")
    op.drop_table("process_heartbeats")
