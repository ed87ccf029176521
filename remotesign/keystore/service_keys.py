"""The operator's own keys made on first use (the JWT issuer's, the SignAPI transport key, the audit
key): one key per instance, found again through a system setting.

Processes and nodes may reach first use together: each makes a key, the first id stored wins
(storage/system_settings.setting_once) and the others destroy theirs and use the winner's, so no
process keeps a key of its own in memory and no unused key is left in the store. A setting whose
key record is gone gets the new key in its place."""

from __future__ import annotations

from collections.abc import Callable

from remotesign.keystore.base import KeyStoreError
from remotesign.keystore.store import KeyStore, StoredKey
from remotesign.storage.db import Database
from remotesign.storage.models import SystemSetting
from remotesign.storage.system_settings import setting_once


def recorded_key_id(db: Database, setting: str) -> str | None:
    with db.session() as s:
        row = s.get(SystemSetting, setting)
        return row.value if row else None


def service_key(db: Database, keystore: KeyStore, setting: str, make: Callable[[], StoredKey]) -> StoredKey:
    """The key recorded under ``setting``, made by ``make`` (once across the cluster) if none is."""
    key_id = recorded_key_id(db, setting)
    if key_id is not None:
        try:
            return keystore.get(key_id, None)
        except KeyStoreError:
            created = make()  # its record is gone: the new key takes its place
            with db.session() as s:
                s.merge(SystemSetting(name=setting, value=created.id))
            return created
    created = make()
    winner = setting_once(db, setting, created.id)
    if winner == created.id:
        return created
    keystore.destroy(created, actor="keystore")  # another process stored its key first
    return keystore.get(winner, None)
