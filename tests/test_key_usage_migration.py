"""Revision 0007 on a database made before it: identity keys created in a relying party's namespace
(or, for service-wide users, in the operator's) become identity keys, so ``/v1/keys`` stops finding
them after the upgrade; a relying party's own keys stay its own, the PKI keys the operator's."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from alembic import command
from sqlalchemy import create_engine, text

from remotesign.keystore import KeyStore, KeyStoreError
from remotesign.keystore.software import SoftwareKeyBackend
from remotesign.storage.db import Database
from remotesign.storage.migrate import alembic_config, upgrade_to_head

NOW = datetime.now(timezone.utc).isoformat()


def _key(conn, key_id: str, tenant: str | None, label: str, handle: bytes = b"h") -> None:  # type: ignore[no-untyped-def]
    conn.execute(text("INSERT INTO keys (id, tenant_id, label, backend, algorithm, public_key_der, handle, created_at)"
                      " VALUES (:id, :t, :l, 'software', 'ec-p256', x'00', :h, :now)"),
                 {"id": key_id, "t": tenant, "l": label, "h": handle, "now": NOW})


def _identity(conn, identity_id: str, user_id: str, tenant: str | None, key_id: str) -> None:  # type: ignore[no-untyped-def]
    conn.execute(text("INSERT INTO users (id, tenant_id, username, display_name, kind, password_failures, enabled,"
                      " created_at) VALUES (:id, :t, :id, 'U', 'natural', 0, 1, :now)"),
                 {"id": user_id, "t": tenant, "now": NOW})
    conn.execute(text("INSERT INTO sign_identities (id, user_id, key_id, certificate_der, chain_der, description,"
                      " labels, domain, status, pin_failures, created_at) VALUES (:id, :u, :k, x'00', x'', 'd', '',"
                      " 'citizen', 'enabled', 0, :now)"), {"id": identity_id, "u": user_id, "k": key_id, "now": NOW})


def test_existing_identity_keys_become_identity_keys(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    command.upgrade(alembic_config(url), "0004")  # the schema before key usages
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO tenants (id, name, client_id, client_secret_hash, allowed_scopes, enabled,"
                          " created_at) VALUES ('t1', 'RP', 'c1', 'x', '', 1, :now)"), {"now": NOW})
        _key(conn, "rp-seal", "t1", "e-seal")
        _key(conn, "rp-identity", "t1", "identity:alice")
        _key(conn, "global-identity", None, "identity:bob")
        _key(conn, "root", None, "root-ca")
        _key(conn, "deleted-identity", "t1", "identity:carol", handle=b"")  # its identity was deleted
        _identity(conn, "i1", "u1", "t1", "rp-identity")
        _identity(conn, "i2", "u2", None, "global-identity")
    engine.dispose()

    upgrade_to_head(url)

    engine = create_engine(url)
    with engine.connect() as conn:
        usage = dict(conn.execute(text("SELECT id, usage FROM keys")).all())
    engine.dispose()
    assert usage == {"rp-seal": "tenant", "rp-identity": "identity", "global-identity": "identity",
                     "root": "operator", "deleted-identity": "identity"}

    store = KeyStore(Database(url), SoftwareKeyBackend(b"k" * 32))
    assert [k.id for k in store.list("t1")] == ["rp-seal"]
    for key_id, tenant in (("rp-identity", "t1"), ("global-identity", None), ("deleted-identity", "t1")):
        try:
            store.get(key_id, tenant)
        except KeyStoreError:
            pass
        else:
            raise AssertionError(f"{key_id} is still reachable as a relying party's or operator key")
        assert store.identity_key(key_id, tenant).id == key_id
    assert store.get("root", None).id == "root" and store.get("rp-seal", "t1").id == "rp-seal"
