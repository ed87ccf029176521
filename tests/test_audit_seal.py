"""Keyed audit (issue 12 point 8): a real service seals its audit chain with signed, time-stamped
checkpoints every N events, every T seconds and at shutdown, copies them to the anchor file, and
`remotesign audit verify` passes on the untampered log while counting the unsealed tail."""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from pathlib import Path

from remotesign.storage.audit_anchor import ref_of
from tests.audit_sealed import (
    SEAL_EVERY,
    Sealed,
    checkpoints,
    db_of,
    home,
    last_event,
    max_checkpoint,
    sealed,
    verify,
)
from tests.harness import Service, cli, free_port

__all__ = ["home", "sealed"]  # the fixtures, imported so pytest finds them here


# --- the untampered log -------------------------------------------------------------------------

def test_checkpoints_every_n_events_and_at_shutdown(sealed: Sealed) -> None:
    running = sealed.running
    assert len(running) == 3  # at start, then after each batch of 5 token events
    assert running[2][0] - running[1][0] == SEAL_EVERY
    last = last_event(sealed.home)
    assert max_checkpoint(sealed.home) == last  # the shutdown checkpoint sealed the tail
    assert all(token for _seq, _h, _sig, token in checkpoints(sealed.home))  # every one time-stamped
    anchored = [json.loads(line) for line in (sealed.home / "audit-anchors.jsonl").read_text().splitlines()]
    assert {a["seq"] for a in anchored if a["kind"] == "checkpoint"} == {c[0] for c in checkpoints(sealed.home)}
    assert [a["kind"] for a in anchored[:2]] == ["key", "tsa"]
    with db_of(sealed.home) as db:  # the shared anchor table holds the same, written by the service
        table = db.execute("SELECT kind, seq, record FROM audit_anchors ORDER BY id").fetchall()
    assert [json.loads(r) for _k, _s, r in table] == anchored
    assert {seq for kind, seq, _r in table if kind == "checkpoint"} == {c[0] for c in checkpoints(sealed.home)}


def test_anchor_file_of_an_older_version_is_imported(home: Path) -> None:
    """An instance from before the anchor table: its anchor file is copied into the table at the
    next start (here: the next `audit seal`), and verify then passes on the table alone too."""
    with db_of(home) as db:
        db.execute("DELETE FROM audit_anchors")
    old = [json.loads(line) for line in (home / "audit-anchors.jsonl").read_text().splitlines()]
    cli(home, "client", "create", "one more event")
    cli(home, "audit", "seal")
    filed = [json.loads(line) for line in (home / "audit-anchors.jsonl").read_text().splitlines()]
    with db_of(home) as db:
        table = {(kind, ref): node for kind, ref, node in db.execute("SELECT kind, ref, node FROM audit_anchors")}
    assert len(filed) == len(old) + 1 and {ref_of(a)[:2] for a in filed} == set(table)
    assert all(table[ref_of(a)[:2]].startswith("imported from ") for a in old)
    assert not table[ref_of(filed[-1])[:2]].startswith("imported from ")  # the new checkpoint: sealed, not imported
    (home / "audit-anchors.jsonl").unlink()
    r = verify(home)
    assert r.returncode == 0, r.stderr.decode()
    assert "checked against the database's anchor table only" in r.stdout.decode()


def test_untampered_log_verifies(home: Path) -> None:
    r = verify(home)
    out = r.stdout.decode()
    assert r.returncode == 0, r.stderr.decode()
    assert "hash chain intact" in out
    assert f"sealed up to event {last_event(home)}; 0 event(s) after the last checkpoint not yet sealed" in out


def test_unsealed_tail_is_accepted_and_counted(home: Path) -> None:
    cli(home, "client", "create", "after the last checkpoint")  # the CLI appends but does not seal
    cli(home, "client", "create", "another one")
    r = verify(home)
    assert r.returncode == 0, r.stderr.decode()
    assert "2 event(s) after the last checkpoint not yet sealed" in r.stdout.decode()
    sealed_now = cli(home, "audit", "seal").stdout.decode()
    assert f"up to event {last_event(home)} (time-stamped)" in sealed_now
    assert "0 event(s) after the last checkpoint not yet sealed" in verify(home).stdout.decode()


def test_checkpoint_time_stamp_verifies_with_openssl(home: Path) -> None:
    """An independent check of one token: openssl against the built-in CA (the token carries no
    certificates, so the TSA certificate from /pki/tsa.pem is given as untrusted)."""
    _seq, chain_hash, _sig, token = checkpoints(home)[-1]
    assert token is not None
    (home / "tst.der").write_bytes(token)

    def openssl_verify(digest_hex: str) -> str:
        r = subprocess.run(["openssl", "ts", "-verify", "-digest", digest_hex, "-in", str(home / "tst.der"),
                            "-token_in", "-CAfile", str(home / "ca.pem"), "-untrusted", str(home / "tsa.pem")],
                           check=False, capture_output=True, text=True)
        return r.stdout + r.stderr

    assert "Verification: OK" in openssl_verify(chain_hash)
    assert "Verification: OK" not in openssl_verify(hashlib.sha256(b"another checkpoint").hexdigest())


# --- sealing by time ----------------------------------------------------------------------------

def test_checkpoint_after_t_seconds(tmp_path: Path) -> None:
    svc = Service(home=tmp_path / "timed", port=free_port(),
                  env={"REMOTESIGN_AUDIT_SEAL_EVENTS": "100000", "REMOTESIGN_AUDIT_SEAL_SECONDS": "1"})
    svc.start()
    try:
        demo = svc.demo_client()
        before = max_checkpoint(svc.home)
        svc.token(demo["client_id"], demo["client_secret"])
        event = last_event(svc.home)
        deadline = time.monotonic() + 120  # a hang guard
        while max_checkpoint(svc.home) < event and time.monotonic() < deadline:
            time.sleep(0.2)
        assert max_checkpoint(svc.home) >= event > before
    finally:
        svc.stop()
    assert b"0 event(s) after the last checkpoint not yet sealed" in svc.cli("audit", "verify").stdout
