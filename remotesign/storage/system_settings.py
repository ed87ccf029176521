"""Operator-level facts stored once: the first writer wins, everyone reads what it wrote."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from remotesign.storage.db import Database
from remotesign.storage.models import SystemSetting


def setting_once(db: Database, name: str, value: str) -> str:
    """Store ``value`` under ``name`` unless a value is there; returns the stored one. Processes
    (nodes) that race to create the same thing (a service key made on first use) then all use the
    winner's, instead of each keeping its own in memory while the last write wins the database."""
    try:
        with db.session() as s:
            row = s.get(SystemSetting, name)
            if row is not None:
                return row.value
            s.add(SystemSetting(name=name, value=value))
        return value
    except IntegrityError:  # another process inserted it between our read and our commit
        with db.session() as s:
            row = s.get(SystemSetting, name)
            assert row is not None
            return row.value
