"""Keyed sealing of the audit chain: signed, time-stamped checkpoints.

The hash chain (audit.py) alone only shows accidental damage: whoever can write the database can
recompute every hash and rewrite the head. A *checkpoint* signs the chain hash at event ``seq``
with the audit key, an operator key in the key store (software key sealed under the master key,
or non-extractable in an HSM), optionally with an RFC 3161 time-stamp from the built-in TSA whose
message imprint is that chain hash. Checkpoints go into the ``audit_checkpoints`` table, into the
``audit_anchors`` table that every node shares, and into the append-only anchor file under the
state directory of the node that made them (audit_anchor.py); the anchors also pin the audit key's
public key and the TSA certificate.

Appending stays cheap: no key-store operation per event. A checkpoint is made from a background
task when ``seal_events`` events were appended or ``seal_seconds`` passed (and something is new),
when the service starts and when it shuts down; of all the processes and nodes sharing the
database only the background leader seals (storage/leader.py). The task polls ``due()`` and
``behind()`` once a second, so at most one checkpoint a second is made: under a heavier load the
unsealed tail is one second of events.

Threat model. The attacker can read and write the whole database (SQL access, a stolen backup
put back), but not the state directory (anchor file, master key file) and cannot make the key
store sign (no master key, no HSM session). Then, undetected by ``remotesign audit verify``,
they cannot:

* edit, delete, insert or reorder any event up to the last checkpoint, even recomputing every
  later hash and rewriting the head: the chain hash at a checkpoint no longer matches its
  signature;
* truncate the log and rewind the head below the last checkpoint, roll the database back to an
  older backup, or delete everything (events, head and checkpoints): the anchor file still holds
  signed checkpoints beyond what is left;
* forge or alter a checkpoint, or swap the audit key for their own: signatures are checked with
  the key pinned in the anchor file, and the key store must prove it holds the matching private
  key (it signs a fresh challenge during verify);
* replace or strip a checkpoint's time-stamp: the token's imprint, signature and TSA certificate
  are checked, and the anchor file records the token's SHA-256.

They *can*, undetected: rewrite, drop or add events after the last checkpoint (the unsealed tail,
at most ``seal_events`` events or ``seal_seconds`` old while the service runs; verify reports its
length), and the next checkpoint then seals what they left; delete checkpoint rows (and their
anchor rows) whose copies are only in another node's anchor file, when verify runs on a node
whose file does not hold them (each node's file covers the checkpoints it made). The
``audit_anchors`` table is no defence against this attacker (it is rewritten like the
checkpoints): it lets every node see every anchor; the anchor files are what the attacker cannot
reach.
Outside the model: an attacker who can also write the state directory and use the key store
(with software keys the master key sits there) can forge everything; use an HSM and keep the
anchor file on append-only storage. The time-stamps are checked against the built-in TSA
certificate, whose record is in the database too: the anchor file pins its SHA-256 and its path to
the built-in root is validated (revocation is not checked: the CA is the service itself).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from remotesign.storage.audit import AuditLog
from remotesign.storage.audit_anchor import Anchors
from remotesign.storage.models import AuditCheckpoint, AuditHead

log = logging.getLogger(__name__)

PAYLOAD_PREFIX = b"remotesign audit checkpoint v1\n"


class CheckpointSigner(Protocol):
    """The audit key as the storage layer sees it (implemented over the key store in trust/)."""

    @property
    def key_id(self) -> str: ...

    @property
    def public_key_der(self) -> bytes: ...

    def sign(self, data: bytes) -> bytes:
        """Signature over ``data`` (SHA-256; RSA PKCS#1 v1.5 or DER ECDSA)."""
        ...


Timestamp = Callable[[bytes], bytes]
"""SHA-256 imprint -> DER TimeStampToken (a CMS ContentInfo)."""


def iso(at: datetime) -> str:
    """The one textual form of a checkpoint time (UTC, microseconds) that is signed and compared."""
    at = at if at.tzinfo else at.replace(tzinfo=timezone.utc)
    return at.astimezone(timezone.utc).isoformat(timespec="microseconds")


def payload(seq: int, chain_hash: str, at: str, key_id: str) -> bytes:
    """What a checkpoint signature covers: a fixed prefix so it cannot be mistaken for another
    structure the key store signs."""
    return PAYLOAD_PREFIX + f"{seq}\n{chain_hash}\n{at}\n{key_id}\n".encode()


def spki_sha256(public_key_der: bytes) -> str:
    return hashlib.sha256(public_key_der).hexdigest()


def signature_valid(public_key_der: bytes, data: bytes, signature: bytes) -> bool:
    """Check a checkpoint signature with the audit key's public key."""
    key = serialization.load_der_public_key(public_key_der)
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
        else:
            return False
    except (InvalidSignature, ValueError):
        return False
    return True


def anchor_record(cp: AuditCheckpoint) -> dict[str, object]:
    return {"kind": "checkpoint", "seq": cp.seq, "hash": cp.hash, "at": iso(cp.at), "key_id": cp.key_id,
            "sig": base64.b64encode(cp.signature).decode(),
            "tst_sha256": hashlib.sha256(cp.timestamp_token).hexdigest() if cp.timestamp_token else None}


class AuditSealer:
    """Makes checkpoints; ``due()`` is an in-memory test cheap enough to poll every second."""

    def __init__(self, audit: AuditLog, signer: CheckpointSigner, anchor: Anchors,
                 timestamp: Timestamp | None, *, every_events: int, every_seconds: float) -> None:
        self.audit = audit
        self.signer = signer
        self.anchor = anchor
        self.timestamp = timestamp
        self.every_events = max(1, every_events)
        self.every_seconds = max(0.0, every_seconds)
        self._lock = threading.Lock()
        self._appended_at_seal = audit.appended
        self._sealed_at = time.monotonic()

    def pin_key(self) -> bool:
        """Pin the audit key in the anchors (first start, or a node's new anchor file)."""
        return self.anchor.pin_key(self.signer.key_id, spki_sha256(self.signer.public_key_der),
                                   iso(datetime.now(timezone.utc)))

    def due(self) -> bool:
        if self.audit.appended - self._appended_at_seal >= self.every_events:
            return True
        return time.monotonic() - self._sealed_at >= self.every_seconds

    def behind(self) -> bool:
        """Whether the chain grew by ``every_events`` since the last checkpoint, whichever processes
        appended (``due`` counts this process's events only): one short read."""
        with self.audit.db.session() as s:
            head = s.scalar(select(AuditHead.last_seq).where(AuditHead.id == 1)) or 0
            last = s.scalar(select(func.max(AuditCheckpoint.seq))) or 0
        return head - last >= self.every_events

    def seal(self) -> AuditCheckpoint | None:
        """Checkpoint the current head unless it is sealed already; None when nothing was new or
        another process sealed the same event first."""
        with self._lock:
            appended = self.audit.appended
            self._sealed_at = time.monotonic()
            with self.audit.db.session() as s:
                head = s.get(AuditHead, 1)
                last = s.scalar(select(func.max(AuditCheckpoint.seq))) or 0
                target = (head.last_seq, head.last_hash) if head is not None else None
            self._appended_at_seal = appended
            if target is None or target[0] <= last:
                return None
            seq, chain_hash = target
            at = datetime.now(timezone.utc)
            signature = self.signer.sign(payload(seq, chain_hash, iso(at), self.signer.key_id))
            token = None
            if self.timestamp is not None:
                try:
                    token = self.timestamp(bytes.fromhex(chain_hash))
                except Exception:  # noqa: BLE001 - a signed checkpoint without time-stamp beats none
                    log.exception("audit checkpoint %d: time-stamping failed; sealed without a time-stamp", seq)
            cp = AuditCheckpoint(seq=seq, hash=chain_hash, at=at, key_id=self.signer.key_id, signature=signature,
                                 timestamp_token=token)
            record = anchor_record(cp)
            try:
                with self.audit.db.session() as s:
                    s.add(cp)
                    self.anchor.add_checkpoint(s, record)  # the shared anchor, in the same transaction
            except IntegrityError:
                return None  # another process sealed this very event
            self.anchor.witness(record)
            return cp
