"""Signers' own secrets and throttling (issue 12): activation codes, escalating locks, attempt
counters, user names unique per relying party, typed digest lists, PKCE per client.

Revision ID: 0008
Revises: 0004
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0004'
branch_labels = None
depends_on = None

_NAMING = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def _drop_username_unique() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        with op.batch_alter_table("users", naming_convention=_NAMING, recreate="always") as b:
            b.drop_constraint("uq_users_username", type_="unique")
            b.create_unique_constraint("uq_users_tenant_username", ["tenant_id", "username"])
            b.create_index("ix_users_username", ["username"], unique=False)
        return
    for uc in sa.inspect(bind).get_unique_constraints("users"):
        if uc["column_names"] == ["username"]:
            op.drop_constraint(uc["name"], "users", type_="unique")
    op.create_unique_constraint("uq_users_tenant_username", "users", ["tenant_id", "username"])
    op.create_index("ix_users_username", "users", ["username"], unique=False)


def upgrade() -> None:
    _drop_username_unique()
    with op.batch_alter_table("users") as b:
        b.add_column(sa.Column("lock_level", sa.Integer(), nullable=False, server_default="0"))
        b.add_column(sa.Column("pin_hash", sa.String(200), nullable=True))
        b.add_column(sa.Column("activated_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("sign_identities") as b:
        b.add_column(sa.Column("pin_lock_level", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("tenants") as b:
        b.add_column(sa.Column("pkce_required", sa.Boolean(), nullable=False, server_default=sa.true()))
    for table in ("access_tokens", "authorization_requests", "authorization_codes"):
        with op.batch_alter_table(table) as b:
            b.add_column(sa.Column("digest_types", sa.String(400), nullable=True))
    op.create_table(
        "activation_codes",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("user_id", sa.String(36), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("purpose", sa.String(20), nullable=False),
        sa.Column("code_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_activation_codes_user_id", "activation_codes", ["user_id"])
    op.create_table(
        "attempt_counters",
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("blocked_until", sa.DateTime(timezone=True), nullable=True),
    )
    # Users enrolled before activation codes existed and who have a password count as activated.
    op.execute("UPDATE users SET activated_at = created_at WHERE password_hash IS NOT NULL")


def downgrade() -> None:
    op.drop_table("attempt_counters")
    op.drop_index("ix_activation_codes_user_id", "activation_codes")
    op.drop_table("activation_codes")
    for table in ("access_tokens", "authorization_requests", "authorization_codes"):
        with op.batch_alter_table(table) as b:
            b.drop_column("digest_types")
    with op.batch_alter_table("tenants") as b:
        b.drop_column("pkce_required")
    with op.batch_alter_table("sign_identities") as b:
        b.drop_column("pin_lock_level")
    with op.batch_alter_table("users") as b:
        b.drop_column("activated_at")
        b.drop_column("pin_hash")
        b.drop_column("lock_level")
        b.drop_index("ix_users_username")
        b.drop_constraint("uq_users_tenant_username", type_="unique")
        b.create_unique_constraint("uq_users_username", ["username"])
