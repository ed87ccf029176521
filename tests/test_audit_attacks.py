"""Keyed audit (issue 12 point 8), the attacks: each thing an attacker with database access would
try, run against a copy of a sealed service's home; `remotesign audit verify` must exit 1 with the
specific message (tests/test_audit_seal.py shows it passes untampered)."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from remotesign.storage.audit import _event_hash
from tests.audit_sealed import (
    Sealed,
    assert_broken,
    checkpoints,
    copy_home,
    db_of,
    home,
    last_event,
    sealed,
)

__all__ = ["home", "sealed"]  # the fixtures, imported so pytest finds them here


def test_edited_event(home: Path) -> None:
    with db_of(home) as db:
        db.execute("UPDATE audit_events SET actor = 'mallory' WHERE seq = 3")
    assert_broken(home, "event 3: content does not match its hash: the event was edited")


def _rehash_from(db: sqlite3.Connection, first: int) -> None:
    """What a forger with the source code does: recompute every hash from ``first`` on and the head."""
    prev = db.execute("SELECT hash FROM audit_events WHERE seq = ?", (first - 1,)).fetchone()[0] if first > 1 \
        else "0" * 64
    rows = db.execute("SELECT seq, at, event, actor, tenant_id, subject, details FROM audit_events WHERE seq >= ? "
                      "ORDER BY seq", (first,)).fetchall()
    for seq, at, event, actor, tenant_id, subject, details in rows:
        when = datetime.fromisoformat(at).replace(tzinfo=timezone.utc)
        digest = _event_hash(seq, when, event, actor, tenant_id, subject, details, prev)
        db.execute("UPDATE audit_events SET prev_hash = ?, hash = ? WHERE seq = ?", (prev, digest, seq))
        prev = digest
    db.execute("UPDATE audit_head SET last_seq = (SELECT max(seq) FROM audit_events), last_hash = ?", (prev,))


def test_edited_event_with_chain_recomputed_and_head_rewritten(home: Path) -> None:
    with db_of(home) as db:
        db.execute("UPDATE audit_events SET actor = 'mallory' WHERE seq = 3")
        _rehash_from(db, 3)
    first = checkpoints(home)[0][0]
    assert first >= 3
    err = assert_broken(home, f"event {first}: the chain hash at event {first} differs from the signed checkpoint: "
                              f"an event in 1..{first} was altered and the later hashes recomputed")
    assert "content does not match" not in err  # the chain itself is consistent: only the key finds it


def test_truncated_tail_with_head_rewound(home: Path) -> None:
    last = last_event(home)
    keep = last - 3
    with db_of(home) as db:
        db.execute("DELETE FROM audit_events WHERE seq > ?", (keep,))
        db.execute("UPDATE audit_head SET last_seq = ?, last_hash = (SELECT hash FROM audit_events WHERE seq = ?)",
                   (keep, keep))
    assert_broken(home, f"a signed checkpoint seals event {last}, but the log ends at event {keep}: "
                        f"events {keep + 1}..{last} were deleted (truncated, head rewound)")


def test_truncated_tail_with_checkpoints_deleted_too(home: Path) -> None:
    """Removing the checkpoints that would betray the truncation: the anchor file still has them."""
    last = last_event(home)
    keep = last - 3
    with db_of(home) as db:
        db.execute("DELETE FROM audit_events WHERE seq > ?", (keep,))
        db.execute("DELETE FROM audit_checkpoints WHERE seq > ?", (keep,))
        db.execute("UPDATE audit_head SET last_seq = ?, last_hash = (SELECT hash FROM audit_events WHERE seq = ?)",
                   (keep, keep))
    err = assert_broken(home, f"events {keep + 1}..{last} were deleted (truncated, head rewound)")
    assert f"checkpoint {last} is in the anchor file but was deleted from the database" in err


def test_everything_deleted(home: Path) -> None:
    last = last_event(home)
    with db_of(home) as db:
        db.execute("DELETE FROM audit_events")
        db.execute("DELETE FROM audit_head")
        db.execute("DELETE FROM audit_checkpoints")
    assert_broken(home, f"the audit log is empty, but signed checkpoints go up to event {last}: "
                        "every event was deleted")


def _attacker_signature(data: bytes = b"forged") -> bytes:
    return ec.generate_private_key(ec.SECP256R1()).sign(data, ec.ECDSA(hashes.SHA256()))


def test_forged_checkpoint_signature(home: Path) -> None:
    seq = checkpoints(home)[-1][0]
    with db_of(home) as db:
        db.execute("UPDATE audit_checkpoints SET signature = ? WHERE seq = ?", (_attacker_signature(), seq))
    assert_broken(home, f"checkpoint {seq}: its signature does not verify with the audit key "
                        "(forged or altered checkpoint)")


def test_recomputed_chain_with_forgedcheckpoints(home: Path) -> None:
    """The full forgery: recompute the chain and re-sign every checkpoint with the attacker's own key."""
    with db_of(home) as db:
        db.execute("UPDATE audit_events SET details = '{\"forged\":true}' WHERE seq = 2")
        _rehash_from(db, 2)
        for seq, in db.execute("SELECT seq FROM audit_checkpoints").fetchall():
            h = db.execute("SELECT hash FROM audit_events WHERE seq = ?", (seq,)).fetchone()[0]
            db.execute("UPDATE audit_checkpoints SET hash = ?, signature = ? WHERE seq = ?",
                       (h, _attacker_signature(h.encode()), seq))
    seq = checkpoints(home)[0][0]
    err = assert_broken(home, f"checkpoint {seq}: its signature does not verify with the audit key")
    assert f"the chain hash at event {seq} differs from the signed checkpoint" in err


def test_audit_key_swapped_for_the_attackers(home: Path) -> None:
    """Replace the audit key's public key with one the attacker holds the private key of, and its
    pin in the anchor table (in the database too) with the attacker's."""
    own = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    with db_of(home) as db:
        key_id = db.execute("SELECT value FROM system_settings WHERE name = 'audit_key_id'").fetchone()[0]
        db.execute("UPDATE keys SET public_key_der = ? WHERE id = ?", (own, key_id))
        pin = {"kind": "key", "key_id": key_id, "spki_sha256": hashlib.sha256(own).hexdigest(), "at": "2020-01-01"}
        db.execute("UPDATE audit_anchors SET ref = ?, record = ? WHERE kind = 'key'",
                   (f"{key_id}:{pin['spki_sha256']}", json.dumps(pin)))
    assert_broken(home, "the audit key in the database is not the key pinned in the anchor file")
    (home / "audit-anchors.jsonl").unlink()  # even without the anchor file: the key store proves it
    assert_broken(home, "the key store cannot sign with the audit key's recorded public key")


def test_audit_key_swapped_but_not_its_pin_in_the_table(home: Path) -> None:
    """The anchor table's pin, when the attacker leaves it, catches the swap on a node whose anchor
    file holds none."""
    own = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    with db_of(home) as db:
        db.execute("UPDATE keys SET public_key_der = ? WHERE id = (SELECT value FROM system_settings "
                   "WHERE name = 'audit_key_id')", (own,))
    (home / "audit-anchors.jsonl").unlink()
    assert_broken(home, "the audit key in the database is not the key pinned in the anchor table")


def test_anchor_table_rows_deleted_with_the_checkpoints(home: Path) -> None:
    """Truncation that also empties the anchor table: this node's anchor file still knows."""
    last = last_event(home)
    keep = last - 3
    with db_of(home) as db:
        db.execute("DELETE FROM audit_events WHERE seq > ?", (keep,))
        db.execute("DELETE FROM audit_checkpoints WHERE seq > ?", (keep,))
        db.execute("DELETE FROM audit_anchors")
        db.execute("UPDATE audit_head SET last_seq = ?, last_hash = (SELECT hash FROM audit_events WHERE seq = ?)",
                   (keep, keep))
    err = assert_broken(home, f"events {keep + 1}..{last} were deleted (truncated, head rewound)")
    assert f"checkpoint {last} is in the anchor file but was deleted from the database" in err


def test_checkpoint_time_stamp_swapped(home: Path) -> None:
    """A genuine token, but of another checkpoint: the imprint does not match."""
    cps = checkpoints(home)
    seq_a, hash_a = cps[-1][:2]
    hash_b, token_b = cps[-2][1], cps[-2][3]
    with db_of(home) as db:
        db.execute("UPDATE audit_checkpoints SET timestamp_token = ? WHERE seq = ?", (token_b, seq_a))
    err = assert_broken(home, f"checkpoint {seq_a}: time-stamp does not match: its imprint is {hash_b}, "
                              f"the checkpoint hash is {hash_a}")
    assert f"checkpoint {seq_a}: its time-stamp token was replaced" in err


def test_checkpoint_time_stamp_altered(home: Path) -> None:
    seq, _h, _sig, token = checkpoints(home)[-1]
    assert token is not None
    from asn1crypto import cms

    info = cms.ContentInfo.load(token)
    signature = info["content"]["signer_infos"][0]["signature"].native
    # flip one bit of the TSA's signature value in place (re-encoding the token with asn1crypto's
    # dump(force=True) fails in a process that never built a ContentType: its name map is lazy)
    altered = bytearray(token)
    at = bytes(token).index(signature) + 10
    altered[at] ^= 0x01
    with db_of(home) as db:
        db.execute("UPDATE audit_checkpoints SET timestamp_token = ? WHERE seq = ?", (bytes(altered), seq))
    assert_broken(home, f"checkpoint {seq}: time-stamp does not match: the TSA signature is invalid")


def test_checkpoint_time_stamp_removed(home: Path) -> None:
    seq = checkpoints(home)[-1][0]
    with db_of(home) as db:
        db.execute("UPDATE audit_checkpoints SET timestamp_token = NULL WHERE seq = ?", (seq,))
    assert_broken(home, f"checkpoint {seq}: its time-stamp token was removed")


def test_database_rolled_back_to_an_older_backup(sealed: Sealed, tmp_path: Path) -> None:
    """Restore the state as of the first running checkpoint: the anchor file knows better."""
    copy = copy_home(sealed.home, tmp_path / "old")
    first = sealed.running[0][0]
    with db_of(copy) as db:
        db.execute("DELETE FROM audit_events WHERE seq > ?", (first,))
        db.execute("DELETE FROM audit_checkpoints WHERE seq > ?", (first,))
        db.execute("UPDATE audit_head SET last_seq = ?, last_hash = (SELECT hash FROM audit_events WHERE seq = ?)",
                   (first, first))
    assert_broken(copy, f"but the log ends at event {first}")




def test_tsa_certificate_record_replaced(home: Path) -> None:
    """Swap the TSA certificate the tokens are checked against (here for the OCSP responder's)."""
    with db_of(home) as db:
        db.execute("UPDATE certificates SET der = (SELECT der FROM certificates WHERE id = (SELECT value FROM "
                   "system_settings WHERE name = 'ocsp_cert_id')) WHERE id = (SELECT value FROM system_settings "
                   "WHERE name = 'tsa_cert_id')")
    err = assert_broken(home, "the TSA certificate in the database is not the one pinned in the anchor file")
    assert "time-stamp does not match: it was not signed by the built-in TSA" in err
