"""Signature requests (Fortress-style ``POST /api/v1/signature``, issue 16) and the consent
columns that tie a login to a user code and a signature request, the one-time passwords of the
consent page; each client's callback key.

Revision ID: 0012
Revises: 0011
"""
from alembic import op
import sqlalchemy as sa


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "signature_requests",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("auth_code", sa.String(64), nullable=False, unique=True),
        sa.Column("tenant_id", sa.String(36), sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
        sa.Column("user_id", sa.String(36), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=True),
        sa.Column("mode", sa.String(12), nullable=False),
        sa.Column("candidates", sa.Text(), nullable=False),
        sa.Column("sign_identity_id", sa.String(36), nullable=True),
        sa.Column("items", sa.Text(), nullable=False),
        sa.Column("digests_summary", sa.String(200), nullable=False),
        sa.Column("digests_summary_algorithm", sa.String(10), nullable=False),
        sa.Column("digest_types", sa.Text(), nullable=True),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=True),
        sa.Column("lease_owner", sa.String(100), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error_code", sa.String(60), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("error_status", sa.Integer(), nullable=True),
        sa.Column("run_async", sa.Boolean(), nullable=False),
        sa.Column("multifactor", sa.Boolean(), nullable=False),
        sa.Column("callback_url", sa.Text(), nullable=True),
        sa.Column("callback_status", sa.String(12), nullable=False),
        sa.Column("callback_attempts", sa.Integer(), nullable=False),
        sa.Column("callback_next_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("callback_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_signature_requests_tenant_id", "signature_requests", ["tenant_id"])
    op.create_index("ix_signature_requests_status", "signature_requests", ["status"])
    op.create_index("ix_signature_requests_callback_status", "signature_requests", ["callback_status"])
    op.create_index("ix_signature_requests_expires_at", "signature_requests", ["expires_at"])
    with op.batch_alter_table("authorization_requests") as batch:
        batch.add_column(sa.Column("login_hint", sa.String(200), nullable=True))
        batch.add_column(sa.Column("signature_request_id", sa.String(36), nullable=True))
        batch.add_column(sa.Column("factors", sa.String(12), nullable=False, server_default="pin"))
        batch.add_column(sa.Column("otp_hash", sa.String(64), nullable=True))
        batch.add_column(sa.Column("otp_expires_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("otp_failures", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("otp_sends", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("otp_sent_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("otp_sent_to", sa.String(200), nullable=True))
    with op.batch_alter_table("tenants") as batch:
        batch.add_column(sa.Column("callback_secret", sa.String(100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tenants") as batch:
        batch.drop_column("callback_secret")
    with op.batch_alter_table("authorization_requests") as batch:
        for column in ("otp_sent_to", "otp_sent_at", "otp_sends", "otp_failures", "otp_expires_at", "otp_hash",
                       "factors"):
            batch.drop_column(column)
        batch.drop_column("signature_request_id")
        batch.drop_column("login_hint")
    op.drop_table("signature_requests")
