"""Whether the settings point at an existing instance: a database whose built-in PKI was created
(by ``remotesign init`` or ``remotesign serve``) and, for software keys, the master key file.

Only ``init`` and ``serve`` may create state. Every other command first asks here, so that running
it in the wrong place fails with a message instead of silently creating a second database, master
key and (after a well-meant ``init``) a second CA.
"""

from __future__ import annotations

import sqlite3

from typing import TYPE_CHECKING

from remotesign.config import Settings
from remotesign.storage.private import sqlite_path

if TYPE_CHECKING:
    from remotesign.keystore import KeyStore, StoredKey
    from remotesign.storage.db import Database

PKI_MARKER = "ocsp_cert_id"  # the last system setting CertificateAuthority.initialize writes


class InstanceError(Exception):
    """There is no usable instance where the settings point (the message says why, in one line)."""


def instance_problem(settings: Settings) -> str | None:
    """Why ``settings`` name no initialised instance ("no database", ...), or None when they do.
    Reads only: a missing SQLite file is not created."""
    db = sqlite_path(settings.database_url)
    if db is not None:
        if not settings.home.exists() and not db.exists():
            return "absent"
        if not db.is_file():
            return "no database"
        return _sqlite_problem(db.resolve().as_uri())
    return _server_problem(settings.database_url)


def master_key_problem(settings: Settings) -> str | None:
    """A software-key instance whose master key file is gone cannot read any of its keys; a new
    key must never be made in its place."""
    if settings.key_backend != "software" or settings.master_key_b64 or settings.master_key_file.is_file():
        return None
    return (f"master key file {settings.master_key_file} is missing, so no stored key can be read: restore it "
            "(or set REMOTESIGN_MASTER_KEY_FILE / REMOTESIGN_MASTER_KEY)")


def refuse_new_master_key(settings: Settings, db: Database) -> None:
    """Raise InstanceError instead of letting the key store make a new master key for a database
    that already holds software keys (sealed under the instance's own): a second node given a
    fresh home, or a home that lost its key file, must bring the instance's key."""
    problem = master_key_problem(settings)
    if problem is None:
        return
    from sqlalchemy import select

    from remotesign.storage.models import KeyRecord

    with db.session() as s:
        holds_keys = s.scalar(select(KeyRecord.id).where(KeyRecord.backend == "software").limit(1)) is not None
    if holds_keys:
        raise InstanceError(f"{problem}. The database already holds keys sealed under this instance's master key; "
                            "a node joining the instance needs a copy of the master key of a node that runs it "
                            "(README: Several nodes)")


def check_keys_open(settings: Settings, keystore: KeyStore, key: StoredKey) -> None:
    """Raise InstanceError unless the key store can use ``key``, a key of the instance (its OCSP
    responder's): the wrong master key, or an HSM token without the instance's keys, fails here
    at start instead of at the first signature."""
    import hashlib

    from remotesign.keystore.base import KeyStoreError

    try:
        keystore.sign_digest(key, hashlib.sha256(b"remotesign start-up key check").digest(), "sha256")
    except KeyStoreError as exc:
        where = (f"the HSM token {settings.pkcs11.token_label!r}" if settings.key_backend == "pkcs11"
                 else "the master key " + ("of REMOTESIGN_MASTER_KEY" if settings.master_key_b64
                                           else f"file {settings.master_key_file}"))
        raise InstanceError(f"{where} does not open this instance's keys ({exc}): a node of an existing instance "
                            "needs the instance's own master key (or HSM token), copied from a node that runs it "
                            "(README: Several nodes)") from exc


def require_instance(settings: Settings) -> None:
    """Raise InstanceError unless ``settings`` name an initialised instance with its master key."""
    problem = instance_problem(settings)
    if problem is not None:
        raise InstanceError(f"no remotesign instance at {settings.home} ({problem}): run `remotesign init`")
    problem = master_key_problem(settings)
    if problem is not None:
        raise InstanceError(problem)


def _sqlite_problem(uri: str) -> str | None:
    try:
        with sqlite3.connect(f"{uri}?mode=ro", uri=True) as conn:
            row = conn.execute("SELECT 1 FROM system_settings WHERE name = ?", (PKI_MARKER,)).fetchone()
    except sqlite3.OperationalError as exc:
        return "database not initialised" if "no such table" in str(exc) else f"database unreadable: {exc}"
    except sqlite3.DatabaseError:
        return "not a remotesign database"
    return None if row else "database not initialised"


def _server_problem(url: str) -> str | None:
    from sqlalchemy import create_engine, inspect, text
    from sqlalchemy.exc import SQLAlchemyError
    from sqlalchemy.pool import NullPool

    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table("system_settings"):
                return "database not initialised"
            row = conn.execute(text("SELECT 1 FROM system_settings WHERE name = :n"), {"n": PKI_MARKER}).first()
    except SQLAlchemyError as exc:
        return f"database unreachable: {str(exc).splitlines()[0]}"
    finally:
        engine.dispose()
    return None if row else "database not initialised"
