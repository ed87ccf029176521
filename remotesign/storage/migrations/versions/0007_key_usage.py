"""Key usage (issue 12): a relying party's own key, an end user's sign-identity key or an operator key.

Identity keys made before this revision were stored in their relying party's key namespace, where
``/v1/keys`` found them. They are recognised here by what points at them: every key a sign identity
names is an identity key; so is a destroyed key (no handle left) labelled ``identity:`` (the key of
a deleted identity; the native API cannot destroy keys). Keys without a tenant are the operator's.

Revision ID: 0007
Revises: 0004
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('keys', schema=None) as batch_op:
        batch_op.add_column(sa.Column('usage', sa.String(length=10), nullable=False, server_default='tenant'))
        batch_op.create_index(batch_op.f('ix_keys_usage'), ['usage'], unique=False)
    op.execute("UPDATE keys SET usage = 'operator' WHERE tenant_id IS NULL")
    op.execute("UPDATE keys SET usage = 'identity' WHERE id IN (SELECT key_id FROM sign_identities)")
    op.execute("UPDATE keys SET usage = 'identity' WHERE label LIKE 'identity:%' "
               "AND (handle IS NULL OR length(handle) = 0)")


def downgrade() -> None:
    with op.batch_alter_table('keys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_keys_usage'))
        batch_op.drop_column('usage')
