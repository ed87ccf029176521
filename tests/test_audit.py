"""The hash-chained audit log: `remotesign audit verify` finds edits, deletions and reordering, and
says which event."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from tests.harness import Service, cli


@pytest.fixture()
def audit_copy(service: Service, tmp_path: Path, demo_token: str) -> Path:
    """A copy of the running service's state to tamper with (the service keeps running on the original)."""
    home = tmp_path / "home"
    home.mkdir()
    src = sqlite3.connect(service.home / "remotesign.db")
    dst = sqlite3.connect(home / "remotesign.db")
    src.backup(dst)
    src.close()
    dst.close()
    shutil.copy(service.home / "master.key", home / "master.key")
    return home


def _rows(home: Path) -> int:
    with sqlite3.connect(home / "remotesign.db") as db:
        return int(db.execute("SELECT count(*) FROM audit_events").fetchone()[0])


def test_events_of_the_running_service_verify(service: Service, demo_token: str) -> None:
    out = service.cli("audit", "verify")
    assert b"hash chain intact" in out.stdout
    with sqlite3.connect(service.home / "remotesign.db") as db:
        kinds = {r[0] for r in db.execute("SELECT DISTINCT event FROM audit_events")}
    assert {"key.created", "certificate.issued", "client.created", "token.issued"} <= kinds


def test_edit_is_detected(audit_copy: Path) -> None:
    with sqlite3.connect(audit_copy / "remotesign.db") as db:
        db.execute("UPDATE audit_events SET actor = 'mallory' WHERE seq = 3")
    r = cli(audit_copy, "audit", "verify", check=False)
    assert r.returncode == 1
    assert b"event 3: content does not match its hash" in r.stderr


def test_deletion_in_the_middle_is_detected(audit_copy: Path) -> None:
    with sqlite3.connect(audit_copy / "remotesign.db") as db:
        db.execute("DELETE FROM audit_events WHERE seq = 4")
    r = cli(audit_copy, "audit", "verify", check=False)
    assert r.returncode == 1 and b"event 5: events 4..4 are missing" in r.stderr


def test_truncating_the_tail_is_detected(audit_copy: Path) -> None:
    last = _rows(audit_copy)
    with sqlite3.connect(audit_copy / "remotesign.db") as db:
        db.execute("DELETE FROM audit_events WHERE seq = ?", (last,))
    r = cli(audit_copy, "audit", "verify", check=False)
    assert r.returncode == 1 and b"events at the end were deleted" in r.stderr


def test_reordering_is_detected(audit_copy: Path) -> None:
    """Swap two events' contents while keeping the sequence numbers (and re-hash them as a forger
    without the earlier hashes would): the links to the previous event break."""
    with sqlite3.connect(audit_copy / "remotesign.db") as db:
        a = db.execute("SELECT at, event, actor, tenant_id, subject, details FROM audit_events WHERE seq=5").fetchone()
        b = db.execute("SELECT at, event, actor, tenant_id, subject, details FROM audit_events WHERE seq=6").fetchone()
        upd = "UPDATE audit_events SET at=?, event=?, actor=?, tenant_id=?, subject=?, details=? WHERE seq=?"
        db.execute(upd, (*b, 5))
        db.execute(upd, (*a, 6))
    r = cli(audit_copy, "audit", "verify", check=False)
    assert r.returncode == 1 and b"event 5:" in r.stderr


def test_appends_inside_transactions_keep_the_chain_on_sqlite(tmp_path: Path) -> None:
    """The raw signing call's appends inside its transaction, racing plain appends, on the
    embedded database (the PostgreSQL run is in test_storage_postgres.py)."""
    from remotesign.storage.migrate import upgrade_to_head
    from tests.audit_race import race_appends_in_transactions

    url = f"sqlite:///{tmp_path / 'audit.db'}"
    upgrade_to_head(url)
    race_appends_in_transactions(url)
