"""Audit anchors in the database, shared by every node (the anchor file stays each node's own
out-of-database witness; an existing file is imported into the table at the next start).

Revision ID: 0016_audit_anchors
Revises: 0015_operators
"""
from alembic import op
import sqlalchemy as sa


revision = '0016_audit_anchors'
down_revision = '0015_operators'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_anchors",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("ref", sa.String(200), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=True),
        sa.Column("record", sa.Text(), nullable=False),
        sa.Column("node", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("kind", "ref", name="uq_audit_anchors_kind_ref"),
    )


def downgrade() -> None:
    op.drop_table("audit_anchors")
