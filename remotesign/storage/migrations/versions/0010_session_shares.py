"""Sessions shared with persons (eParaksts Share API, issue 13).

Revision ID: 0010
Revises: 0009
"""
from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "session_shares",
        sa.Column("session_id", sa.String(64), sa.ForeignKey("signing_sessions.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("person_id", sa.String(20), primary_key=True),
        sa.Column("tenant_id", sa.String(36), sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
        sa.Column("access_rights", sa.Text(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_session_shares_person_id", "session_shares", ["person_id"])
    op.create_index("ix_session_shares_tenant_id", "session_shares", ["tenant_id"])


def downgrade() -> None:
    op.drop_table("session_shares")
