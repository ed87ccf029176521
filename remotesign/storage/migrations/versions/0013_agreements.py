"""Agreements with their certificate lifecycle, signing transactions authorized by a passcode or a
one-time code, the record of notifications sent to signers, and the networks a client may call
from (Remote Signing (VN)-style API, issue 17).

Revision ID: 0013
Revises: 0012
"""
from alembic import op
import sqlalchemy as sa


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "agreements",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("reference", sa.String(64), nullable=False),
        sa.Column("tenant_id", sa.String(36), sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
        sa.Column("user_id", sa.String(36), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=True),
        sa.Column("sign_identity_id", sa.String(36), nullable=True),
        sa.Column("owner_reference", sa.String(200), nullable=False),
        sa.Column("shared_mode", sa.String(12), nullable=False),
        sa.Column("shared_from", sa.String(36), nullable=True),
        sa.Column("accepted_apps", sa.Text(), nullable=False),
        sa.Column("product", sa.String(40), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("owner_email", sa.String(200), nullable=True),
        sa.Column("owner_phone", sa.String(40), nullable=True),
        sa.Column("otp_email", sa.String(200), nullable=True),
        sa.Column("otp_phone", sa.String(40), nullable=True),
        sa.Column("passcode_channel", sa.String(8), nullable=False),
        sa.Column("passcode_must_change", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=False, server_default=""),
        sa.Column("notice", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("tenant_id", "reference", name="uq_agreements_tenant_reference"),
    )
    for column in ("reference", "tenant_id", "user_id", "sign_identity_id", "owner_reference", "status",
                   "owner_email", "otp_email"):
        op.create_index(f"ix_agreements_{column}", "agreements", [column])
    op.create_table(
        "signing_transactions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("tenant_id", sa.String(36), sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
        sa.Column("agreement_id", sa.String(36), sa.ForeignKey("agreements.id", ondelete="CASCADE"), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("items", sa.Text(), nullable=False),
        sa.Column("method", sa.String(12), nullable=False),
        sa.Column("client_address", sa.String(64), nullable=True),
        sa.Column("lease_owner", sa.String(100), nullable=True),
        sa.Column("otp_hash", sa.String(64), nullable=True),
        sa.Column("otp_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("otp_failures", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("error_code", sa.String(60), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    )
    for column in ("tenant_id", "agreement_id", "status", "expires_at"):
        op.create_index(f"ix_signing_transactions_{column}", "signing_transactions", [column])
    op.create_table(
        "notifications",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("tenant_id", sa.String(36), nullable=True),
        sa.Column("subject_ref", sa.String(64), nullable=False),
        sa.Column("purpose", sa.String(40), nullable=False),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("recipient", sa.String(200), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("owner", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_notifications_tenant_id", "notifications", ["tenant_id"])
    op.create_index("ix_notifications_status", "notifications", ["status"])
    with op.batch_alter_table("tenants") as batch:
        batch.add_column(sa.Column("allowed_networks", sa.Text(), nullable=False, server_default=""))
        batch.add_column(sa.Column("counter_signer_key", sa.String(36), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tenants") as batch:
        batch.drop_column("counter_signer_key")
        batch.drop_column("allowed_networks")
    op.drop_table("notifications")
    op.drop_table("signing_transactions")
    op.drop_table("agreements")
