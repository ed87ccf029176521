"""Signature activation data (SAD) for the Cloud Signature Consortium API (issue 19): a signer's
authorization of a number of signatures with one credential, bound (SCAL2) to their digests, and
pushed authorization requests (RFC 9126) of its OAuth2 endpoints, and the results of\nasynchronous calls, kept until they are fetched.

Revision ID: 0014
Revises: 0013
"""
from alembic import op
import sqlalchemy as sa


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("authorization_requests") as batch:
        batch.add_column(sa.Column("document_labels", sa.Text(), nullable=True))
    op.create_table(
        "signature_activations",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("sad_hash", sa.String(64), nullable=True, unique=True),
        sa.Column("tenant_id", sa.String(36), sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
        sa.Column("user_id", sa.String(36), nullable=False),
        sa.Column("identity_id", sa.String(36), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("factors", sa.String(20), nullable=False),
        sa.Column("hash_name", sa.String(10), nullable=True),
        sa.Column("digests", sa.Text(), nullable=True),
        sa.Column("allowed", sa.Integer(), nullable=False),
        sa.Column("used", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("used_digests", sa.Text(), nullable=False, server_default="[]"),
        sa.Column("version", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("otp_hash", sa.String(64), nullable=True),
        sa.Column("otp_failures", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("process_id", sa.String(36), nullable=True),
        sa.Column("description", sa.String(500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("transaction_ends_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_signature_activations_owner", "signature_activations", ["tenant_id", "user_id", "identity_id"])
    op.create_index("ix_signature_activations_expires_at", "signature_activations", ["expires_at"])
    op.create_table(
        "pushed_authorizations",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("tenant_id", sa.String(36), sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
        sa.Column("parameters", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "deferred_results",
        sa.Column("id_hash", sa.String(64), primary_key=True),
        sa.Column("tenant_id", sa.String(36), sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
        sa.Column("user_id", sa.String(36), nullable=True),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("lease_owner", sa.String(100), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("deferred_results")
    with op.batch_alter_table("authorization_requests") as batch:
        batch.drop_column("document_labels")
    op.drop_table("pushed_authorizations")
    op.drop_index("ix_signature_activations_expires_at", "signature_activations")
    op.drop_index("ix_signature_activations_owner", "signature_activations")
    op.drop_table("signature_activations")
