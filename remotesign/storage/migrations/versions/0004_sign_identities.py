"""Users, sign identities, devices, authorization requests and codes, signature processes (issue 5: server-held identities, SCAL2).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 23:03:11.721069
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('authorization_codes',
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('tenant_id', sa.String(length=36), nullable=False),
    sa.Column('auth_server', sa.String(length=100), nullable=False),
    sa.Column('user_id', sa.String(length=36), nullable=False),
    sa.Column('redirect_uri', sa.Text(), nullable=False),
    sa.Column('scope', sa.Text(), nullable=False),
    sa.Column('sign_identity_id', sa.String(length=36), nullable=True),
    sa.Column('digests_summary', sa.String(length=200), nullable=True),
    sa.Column('digests_summary_algorithm', sa.String(length=10), nullable=True),
    sa.Column('code_challenge', sa.String(length=200), nullable=True),
    sa.Column('code_challenge_method', sa.String(length=10), nullable=True),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('code_hash')
    )
    with op.batch_alter_table('authorization_codes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_authorization_codes_expires_at'), ['expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_authorization_codes_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('authorization_requests',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('browser_hash', sa.String(length=64), nullable=False),
    sa.Column('tenant_id', sa.String(length=36), nullable=False),
    sa.Column('auth_server', sa.String(length=100), nullable=False),
    sa.Column('redirect_uri', sa.Text(), nullable=False),
    sa.Column('state', sa.Text(), nullable=True),
    sa.Column('scope', sa.Text(), nullable=False),
    sa.Column('sign_identity_id', sa.String(length=36), nullable=True),
    sa.Column('digests_summary', sa.String(length=200), nullable=True),
    sa.Column('digests_summary_algorithm', sa.String(length=10), nullable=True),
    sa.Column('code_challenge', sa.String(length=200), nullable=True),
    sa.Column('code_challenge_method', sa.String(length=10), nullable=True),
    sa.Column('user_id', sa.String(length=36), nullable=True),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('process_id', sa.String(length=36), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('authorization_requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_authorization_requests_expires_at'), ['expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_authorization_requests_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('users',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('tenant_id', sa.String(length=36), nullable=True),
    sa.Column('username', sa.String(length=200), nullable=False),
    sa.Column('display_name', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('email', sa.String(length=200), nullable=True),
    sa.Column('phone', sa.String(length=40), nullable=True),
    sa.Column('serial_number', sa.String(length=64), nullable=True),
    sa.Column('password_hash', sa.String(length=200), nullable=True),
    sa.Column('password_failures', sa.Integer(), nullable=False),
    sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('username')
    )
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_users_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('devices',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('user_id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('public_key_der', sa.LargeBinary(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('token_hash')
    )
    with op.batch_alter_table('devices', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_devices_user_id'), ['user_id'], unique=False)

    op.create_table('signature_processes',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('tenant_id', sa.String(length=36), nullable=False),
    sa.Column('user_id', sa.String(length=36), nullable=False),
    sa.Column('sign_identity_id', sa.String(length=36), nullable=False),
    sa.Column('operation_type', sa.String(length=20), nullable=False),
    sa.Column('digest_value', sa.LargeBinary(), nullable=False),
    sa.Column('digest_algorithm', sa.String(length=10), nullable=False),
    sa.Column('signature_algorithm', sa.String(length=20), nullable=False),
    sa.Column('data_info_html', sa.Text(), nullable=True),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('value', sa.Text(), nullable=True),
    sa.Column('device_id', sa.String(length=36), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('signature_processes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_signature_processes_expires_at'), ['expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_signature_processes_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_signature_processes_tenant_id'), ['tenant_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_signature_processes_user_id'), ['user_id'], unique=False)

    op.create_table('sign_identities',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('user_id', sa.String(length=36), nullable=False),
    sa.Column('key_id', sa.String(length=36), nullable=False),
    sa.Column('certificate_id', sa.String(length=36), nullable=True),
    sa.Column('certificate_der', sa.LargeBinary(), nullable=False),
    sa.Column('chain_der', sa.LargeBinary(), nullable=False),
    sa.Column('description', sa.String(length=200), nullable=False),
    sa.Column('labels', sa.Text(), nullable=False),
    sa.Column('domain', sa.String(length=60), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('status_reason', sa.String(length=200), nullable=True),
    sa.Column('pin_hash', sa.String(length=200), nullable=True),
    sa.Column('pin_failures', sa.Integer(), nullable=False),
    sa.Column('pin_locked_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['certificate_id'], ['certificates.id'], ),
    sa.ForeignKeyConstraint(['key_id'], ['keys.id'], ),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('sign_identities', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sign_identities_user_id'), ['user_id'], unique=False)

    with op.batch_alter_table('access_tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('user_id', sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column('sign_identity_id', sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column('digests_summary', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('digests_summary_algorithm', sa.String(length=10), nullable=True))
        batch_op.add_column(sa.Column('consumed_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('code_hash', sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f('ix_access_tokens_code_hash'), ['code_hash'], unique=False)
        batch_op.create_index(batch_op.f('ix_access_tokens_user_id'), ['user_id'], unique=False)

    with op.batch_alter_table('signing_operations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('digests_summary', sa.String(length=200), nullable=True))
        batch_op.create_index(batch_op.f('ix_signing_operations_digests_summary'), ['digests_summary'], unique=False)

    with op.batch_alter_table('tenants', schema=None) as batch_op:
        batch_op.add_column(sa.Column('redirect_uris', sa.Text(), nullable=False, server_default=''))



def downgrade() -> None:
    with op.batch_alter_table('tenants', schema=None) as batch_op:
        batch_op.drop_column('redirect_uris')

    with op.batch_alter_table('signing_operations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_signing_operations_digests_summary'))
        batch_op.drop_column('digests_summary')

    with op.batch_alter_table('access_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_access_tokens_user_id'))
        batch_op.drop_index(batch_op.f('ix_access_tokens_code_hash'))
        batch_op.drop_column('code_hash')
        batch_op.drop_column('consumed_at')
        batch_op.drop_column('digests_summary_algorithm')
        batch_op.drop_column('digests_summary')
        batch_op.drop_column('sign_identity_id')
        batch_op.drop_column('user_id')

    with op.batch_alter_table('sign_identities', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sign_identities_user_id'))

    op.drop_table('sign_identities')
    with op.batch_alter_table('signature_processes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_signature_processes_user_id'))
        batch_op.drop_index(batch_op.f('ix_signature_processes_tenant_id'))
        batch_op.drop_index(batch_op.f('ix_signature_processes_status'))
        batch_op.drop_index(batch_op.f('ix_signature_processes_expires_at'))

    op.drop_table('signature_processes')
    with op.batch_alter_table('devices', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_devices_user_id'))

    op.drop_table('devices')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_users_tenant_id'))

    op.drop_table('users')
    with op.batch_alter_table('authorization_requests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_authorization_requests_tenant_id'))
        batch_op.drop_index(batch_op.f('ix_authorization_requests_expires_at'))

    op.drop_table('authorization_requests')
    with op.batch_alter_table('authorization_codes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_authorization_codes_tenant_id'))
        batch_op.drop_index(batch_op.f('ix_authorization_codes_expires_at'))

    op.drop_table('authorization_codes')
