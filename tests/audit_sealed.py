"""A sealed service's state for the keyed-audit tests (issue 12 point 8): a real service that
seals every 5 events, driven over HTTP and stopped, and helpers to copy, read and verify its home."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.harness import Service, cli, free_port

SEAL_EVERY = 5
Checkpoint = tuple[int, str, bytes, "bytes | None"]  # seq, chain hash, signature, time-stamp token


@dataclass(frozen=True)
class Sealed:
    """The stopped service's home, and the checkpoints it had made before shutdown."""

    home: Path
    running: list[Checkpoint]


@pytest.fixture(scope="module")
def sealed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sealed]:
    """A service sealing every 5 events (never by time), driven over HTTP, then stopped so that the
    shutdown checkpoint seals the tail. Yields the stopped service; its home is never modified."""
    svc = Service(home=tmp_path_factory.mktemp("sealed"), port=free_port(),
                  env={"REMOTESIGN_AUDIT_SEAL_EVENTS": str(SEAL_EVERY), "REMOTESIGN_AUDIT_SEAL_SECONDS": "3600"})
    svc.start()
    try:
        for name in ("ca.pem", "tsa.pem"):  # for openssl: the tokens do not embed the TSA's chain
            (svc.home / name).write_bytes(httpx.get(f"{svc.url}/pki/{name}", timeout=10).content)
        demo = svc.demo_client()
        for batch in range(3):  # the checkpoint at start, then one after each batch of 5 events
            for _ in range(SEAL_EVERY if batch else 0):
                svc.token(demo["client_id"], demo["client_secret"])  # one token.issued event each
            last = last_event(svc.home)
            deadline = time.monotonic() + 120  # a hang guard
            while max_checkpoint(svc.home) < last and time.monotonic() < deadline:
                time.sleep(0.2)
        running = checkpoints(svc.home)
        svc.token(demo["client_id"], demo["client_secret"])  # unsealed until shutdown
    finally:
        svc.stop()
    yield Sealed(svc.home, running)


@contextmanager
def db_of(home: Path) -> Iterator[sqlite3.Connection]:
    """The home's SQLite database, committed and closed at the end."""
    db = sqlite3.connect(home / "remotesign.db")
    try:
        with db:
            yield db
    finally:
        db.close()


def checkpoints(home: Path) -> list[Checkpoint]:
    with db_of(home) as db:
        return list(db.execute("SELECT seq, hash, signature, timestamp_token FROM audit_checkpoints ORDER BY seq"))


def max_checkpoint(home: Path) -> int:
    with db_of(home) as db:
        return int(db.execute("SELECT coalesce(max(seq), 0) FROM audit_checkpoints").fetchone()[0])


def last_event(home: Path) -> int:
    with db_of(home) as db:
        return int(db.execute("SELECT max(seq) FROM audit_events").fetchone()[0])


@pytest.fixture()
def home(sealed: Sealed, tmp_path: Path) -> Path:
    """A copy of the sealed service's state to attack (database, anchor file, master key)."""
    return copy_home(sealed.home, tmp_path / "home")


def copy_home(src: Path, dst: Path) -> Path:
    """The database through SQLite's backup API (it reads the WAL), then the files next to it."""
    dst.mkdir()
    with db_of(src) as source, sqlite3.connect(dst / "remotesign.db") as target:
        source.backup(target)
    for name in ("audit-anchors.jsonl", "master.key", "ca.pem", "tsa.pem"):
        shutil.copy(src / name, dst / name)
    return dst


def verify(home: Path) -> subprocess.CompletedProcess[bytes]:
    return cli(home, "audit", "verify", check=False)


def assert_broken(home: Path, message: str) -> str:
    r = verify(home)
    err = r.stderr.decode()
    assert r.returncode == 1, r.stdout.decode() + err
    assert "audit log BROKEN" in err and message in err, err
    return err


