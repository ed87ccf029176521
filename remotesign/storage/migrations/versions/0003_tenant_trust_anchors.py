"""Per-tenant trust anchors for validation.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 22:15:15.407949
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('trust_anchors',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('tenant_id', sa.String(length=36), nullable=False),
    sa.Column('sha256_hex', sa.String(length=64), nullable=False),
    sa.Column('subject', sa.Text(), nullable=False),
    sa.Column('der', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('tenant_id', 'sha256_hex', name='uq_trust_anchor_tenant_cert')
    )
    with op.batch_alter_table('trust_anchors', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_trust_anchors_tenant_id'), ['tenant_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('trust_anchors', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_trust_anchors_tenant_id'))

    op.drop_table('trust_anchors')
