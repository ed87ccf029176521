"""State that processes (nodes) sharing one database must agree on, in-process and fast: a service
key made on first use by two processes at once, messages queued by a node that vanished, the
background leader's lock, and the start-up checks of a node's master key.
(tests/test_cluster.py runs real nodes on PostgreSQL.)"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select

from remotesign.keystore import KeyStore
from remotesign.keystore.software import SoftwareKeyBackend
from remotesign.storage import process_id
from remotesign.storage.audit import AuditLog
from remotesign.storage.db import Database
from remotesign.storage.leader import FileLeadership, LeaderKeeper, leadership_for
from remotesign.storage.migrate import upgrade_to_head
from remotesign.storage.models import KeyRecord, Notification
from remotesign.trust.jwt_issuer import JwtIssuer


@pytest.fixture()
def db(tmp_path: Path) -> Iterator[Database]:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    upgrade_to_head(url)
    database = Database(url)
    yield database
    database.dispose()


def test_a_key_made_on_first_use_by_two_processes_at_once_is_one_key(db: Database) -> None:
    """Two processes' JWT issuers both find no key and both make one: the first to store its id
    wins and the other uses it too (it used to keep its own in memory: tokens of one node were
    refused by the other)."""
    master = secrets.token_bytes(32)
    first = JwtIssuer(db, KeyStore(db, SoftwareKeyBackend(master)), "https://rs.example/rs")
    second = JwtIssuer(db, KeyStore(db, SoftwareKeyBackend(master)), "https://rs.example/rs")
    create = first.keystore.create

    def create_while_the_other_wins(*args, **kwargs):  # type: ignore[no-untyped-def]
        made = create(*args, **kwargs)
        second.key_id  # noqa: B018 - the other process makes and stores its key meanwhile
        return made

    first.keystore.create = create_while_the_other_wins  # type: ignore[method-assign]
    assert first.key_id == second.key_id
    token = first.issue("user", {}, 60)
    assert second.verify(token)["sub"] == "user"
    assert JwtIssuer(db, KeyStore(db, SoftwareKeyBackend(master)), "https://rs.example/rs").key_id == first.key_id
    with db.session() as s:  # the loser's key was destroyed, not left usable in the store
        keys = {k.id: k.handle for k in s.scalars(select(KeyRecord).where(KeyRecord.label == "jwt"))}
    assert len(keys) == 2 and [bool(h) for i, h in sorted(keys.items(), key=lambda kv: kv[0] != first.key_id)] == \
        [True, False]


def _queued(db: Database, owner: str, age: timedelta) -> str:
    nid = str(uuid.uuid4())
    with db.session() as s:
        s.add(Notification(id=nid, tenant_id=None, subject_ref="t", purpose="otp", channel="sms", recipient="***123",
                           status="queued", attempts=0, owner=owner, created_at=datetime.now(timezone.utc) - age))
    return nid


def test_messages_of_a_vanished_node_are_marked_lost(db: Database) -> None:
    from remotesign.notify.outbox import LOST_AFTER_SECONDS, Outbox

    outbox = Outbox(db, AuditLog(db), None, None)
    here = process_id.current()
    elsewhere_old = _queued(db, f"0123456789ab.4242.{here.started}", timedelta(seconds=LOST_AFTER_SECONDS + 60))
    elsewhere_recent = _queued(db, "0123456789ab.4243.1", timedelta(seconds=60))  # may still be sending
    here_alive = _queued(db, str(process_id.ProcessId(here.host, 1, 0)), timedelta(seconds=LOST_AFTER_SECONDS * 2))
    assert outbox.sweep_lost() == 1
    assert outbox.status(elsewhere_old) == "lost"
    assert outbox.status(elsewhere_recent) == "queued"
    assert outbox.status(here_alive) == "queued"  # pid 1 of this host lives: never lost by age


def test_leader_lock_belongs_to_the_database_not_the_home(tmp_path: Path) -> None:
    """Two homes sharing one SQLite database: one leader, taken over when it lets go."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    first = LeaderKeeper(leadership_for(url, tmp_path / "home-a"))
    second = LeaderKeeper(leadership_for(url, tmp_path / "home-b"))
    assert isinstance(first.leadership, FileLeadership)
    assert first.check_now() and first.leading
    assert not second.check_now() and not second.leading
    first.stop()
    assert not first.leading
    assert second.check_now() and second.leading
    second.stop()


def test_a_node_without_the_instances_master_key_refuses_to_start(tmp_path: Path) -> None:
    """`init` (like `serve`) on a fresh home naming another node's database: no master key made
    beside the instance's keys, a wrong one found at start; with a copy of the key it joins."""
    import base64
    import shutil

    from tests.harness import cli

    first = tmp_path / "first"
    cli(first, "init")
    shared = {"REMOTESIGN_DATABASE_URL": f"sqlite:///{first / 'remotesign.db'}"}
    keyless = tmp_path / "keyless"
    r = cli(keyless, "init", env=shared, check=False)
    assert r.returncode == 1 and "already holds keys sealed under this instance's master key" in r.stderr.decode()
    assert not (keyless / "master.key").exists()
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    (wrong / "master.key").write_text(base64.b64encode(secrets.token_bytes(32)).decode() + "\n")
    r = cli(wrong, "init", env=shared, check=False)
    assert r.returncode == 1 and "does not open this instance's keys" in r.stderr.decode()
    joined = tmp_path / "joined"
    joined.mkdir()
    shutil.copy2(first / "master.key", joined / "master.key")
    out = cli(joined, "init", env=shared).stdout.decode()
    assert "PKI:          already initialised" in out and "demo client" not in out
    assert not (joined / "demo-client.json").exists()
