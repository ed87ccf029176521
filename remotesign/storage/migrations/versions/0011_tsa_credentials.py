"""TLS client certificates for per-request time-stamping authorities (issue 14.3).

Revision ID: 0011
Revises: 0010
"""
from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tsa_credentials",
        sa.Column("code", sa.String(100), primary_key=True),
        sa.Column("tenant_id", sa.String(36), sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=True),
        sa.Column("key_id", sa.String(36), sa.ForeignKey("keys.id"), nullable=False),
        sa.Column("certificate_der", sa.LargeBinary(), nullable=False),
        sa.Column("chain_pem", sa.Text(), nullable=False),
        sa.Column("password_hash", sa.String(200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_tsa_credentials_tenant_id", "tsa_credentials", ["tenant_id"])


def downgrade() -> None:
    op.drop_table("tsa_credentials")
