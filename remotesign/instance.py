"""Whether the settings point at an existing instance: a database whose built-in PKI was created
(by ``remotesign init`` or ``remotesign serve``) and, for software keys, the master key file.

Only ``init`` and ``serve`` may create state. Every other command first asks here, so that running
it in the wrong place fails with a message instead of silently creating a second database, master
key and (after a well-meant ``init``) a second CA.
"""

from __future__ import annotations

import sqlite3

from remotesign.config import Settings
from remotesign.storage.private import sqlite_path

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
