"""Verify the audit log with its checkpoints: the hash chain, every checkpoint's signature and
time-stamp, the checkpoints against the anchor file, and the chain against the checkpoints.

The threat model is in audit_seal.py. Events after the last valid checkpoint are accepted (they
are only hash-chained) and counted in ``SealReport.unsealed``.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select

from remotesign.storage.audit import AuditLog, AuditProblem
from remotesign.storage.audit_anchor import (
    AnchorContents,
    AnchoredCheckpoint,
    AnchorFile,
)
from remotesign.storage.audit_seal import iso, payload, signature_valid, spki_sha256
from remotesign.storage.models import AuditCheckpoint


@dataclass(frozen=True)
class TokenCheck:
    """A time-stamp token's verdict: a problem (None when it is valid) and its genTime."""

    problem: str | None
    gen_time: datetime | None = None


TokenVerifier = Callable[[bytes, bytes], TokenCheck]
"""(DER TimeStampToken, expected SHA-256 imprint) -> TokenCheck."""


@dataclass(frozen=True)
class AuditKeyFacts:
    """The audit key as found through the key store; ``holds_private_key`` signs a challenge."""

    key_id: str
    public_key_der: bytes
    holds_private_key: Callable[[], bool]


@dataclass
class SealReport:
    events: int = 0
    problems: list[AuditProblem] = field(default_factory=list)
    checkpoints: int = 0          # valid signed checkpoints
    last_sealed: int = 0          # seq of the last valid checkpoint
    last_timestamp: datetime | None = None
    timestamped: int = 0          # checkpoints with a valid time-stamp
    database_only: int = 0        # valid checkpoints not (yet) in this node's anchor file

    @property
    def unsealed(self) -> int:
        return max(0, self.events - self.last_sealed)


def _problem(report: SealReport, seq: int | None, message: str) -> None:
    report.problems.append(AuditProblem(seq, message))


def _check_key(report: SealReport, key: AuditKeyFacts | None, anchors: AnchorContents,
               has_checkpoints: bool) -> bytes | None:
    """The public key (DER) checkpoints are verified with, or None when there is none to trust."""
    if key is None:
        if anchors.keys or has_checkpoints:
            _problem(report, None, "the audit key is missing from the key store: checkpoints cannot be verified")
        return None
    pinned = [k for k in anchors.keys if k.key_id == key.key_id]
    if anchors.keys and not any(k.spki_sha256 == spki_sha256(key.public_key_der) for k in pinned):
        _problem(report, None, "the audit key in the database is not the key pinned in the anchor file "
                               "(key record replaced)")
        return None
    if not key.holds_private_key():
        _problem(report, None, "the key store cannot sign with the audit key's recorded public key "
                               "(key record replaced)")
        return None
    return key.public_key_der


def _signed_ok(public_der: bytes, seq: int, chain_hash: str, at: str, key_id: str, key: AuditKeyFacts,
               signature: bytes) -> bool:
    return key_id == key.key_id and signature_valid(public_der, payload(seq, chain_hash, at, key_id), signature)


def verify_sealed(audit: AuditLog, key: AuditKeyFacts | None, anchor: AnchorFile, verify_token: TokenVerifier,
                  tsa_cert_sha256: str | None = None) -> SealReport:
    """Everything ``remotesign audit verify`` checks, problems in a stable order. ``tsa_cert_sha256``:
    the TSA certificate tokens are checked against, compared with the ones the anchor file pins."""
    report = SealReport()
    anchors = anchor.read()  # before the database: checkpoints made meanwhile are not expected yet
    for message in anchors.problems:
        _problem(report, None, message)
    with audit.db.session() as s:
        rows = {cp.seq: cp for cp in s.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.seq))}
    if rows and not anchors.exists:
        _problem(report, None, f"the anchor file {anchor.path} is missing, but the database holds {len(rows)} "
                               "checkpoint(s)")
    if tsa_cert_sha256 and anchors.tsa_certificates and tsa_cert_sha256 not in anchors.tsa_certificates:
        _problem(report, None, "the TSA certificate in the database is not the one pinned in the anchor file "
                               "(certificate record replaced)")
    public_der = _check_key(report, key, anchors, bool(rows or anchors.checkpoints))
    expected: dict[int, str] = {}  # seq -> chain hash a valid signature vouches for
    if public_der is not None and key is not None:
        expected = _check_checkpoints(report, public_der, key, rows, anchors.checkpoints, verify_token)

    mismatched: list[int] = []

    def observe(seq: int, chain_hash: str) -> None:
        want = expected.get(seq)
        if want is not None and want != chain_hash:
            mismatched.append(seq)

    report.events, chain_problems = audit.verify(observe)
    report.problems.extend(chain_problems)
    previous = 0
    for seq in sorted(expected):
        if seq in mismatched:
            _problem(report, seq, f"the chain hash at event {seq} differs from the signed checkpoint: an event in "
                                  f"{previous + 1}..{seq} was altered and the later hashes recomputed")
        previous = seq
    beyond = [seq for seq in expected if seq > report.events]
    if beyond and report.events == 0:
        _problem(report, max(beyond), f"the audit log is empty, but signed checkpoints go up to event "
                                      f"{max(beyond)}: every event was deleted")
    elif beyond:
        _problem(report, max(beyond), f"a signed checkpoint seals event {max(beyond)}, but the log ends at event "
                                      f"{report.events}: events {report.events + 1}..{max(beyond)} were deleted "
                                      "(truncated, head rewound)")
    report.last_sealed = max((s for s in expected if s not in mismatched and s <= report.events), default=0)
    return report


def _check_checkpoints(report: SealReport, public_der: bytes, key: AuditKeyFacts,
                       rows: dict[int, AuditCheckpoint], anchored: dict[int, AnchoredCheckpoint],
                       verify_token: TokenVerifier) -> dict[int, str]:
    expected: dict[int, str] = {}
    for seq in sorted(set(rows) | set(anchored)):
        row, line = rows.get(seq), anchored.get(seq)
        valid_row = row is not None and _signed_ok(public_der, seq, row.hash, iso(row.at), row.key_id, key,
                                                   row.signature)
        valid_line = line is not None and _signed_ok(public_der, seq, line.hash, line.at, line.key_id, key,
                                                     _b64(line.signature_b64))
        if row is not None and not valid_row:
            _problem(report, seq, f"checkpoint {seq}: its signature does not verify with the audit key "
                                  "(forged or altered checkpoint)")
        if line is not None and not valid_line:
            _problem(report, seq, f"checkpoint {seq} in the anchor file: its signature does not verify with the "
                                  "audit key (forged or altered line)")
        if line is not None and row is None:
            _problem(report, seq, f"checkpoint {seq} is in the anchor file but was deleted from the database")
        elif line is not None and row is not None and valid_row and valid_line and (
                line.hash, line.at, _b64(line.signature_b64)) != (row.hash, iso(row.at), row.signature):
            _problem(report, seq, f"checkpoint {seq} in the database differs from the anchor file")
        if row is not None and valid_row:
            _check_token(report, seq, row, line, verify_token)
            if line is None:
                report.database_only += 1
        if valid_line and line is not None:
            expected[seq] = line.hash
        elif valid_row and row is not None:
            expected[seq] = row.hash
    report.checkpoints = len(expected)
    return expected


def _check_token(report: SealReport, seq: int, row: AuditCheckpoint, line: AnchoredCheckpoint | None,
                 verify_token: TokenVerifier) -> None:
    token = row.timestamp_token
    if line is not None and line.tst_sha256 is not None:
        if token is None:
            _problem(report, seq, f"checkpoint {seq}: its time-stamp token was removed")
            return
        if hashlib.sha256(token).hexdigest() != line.tst_sha256:
            _problem(report, seq, f"checkpoint {seq}: its time-stamp token was replaced (not the one in the "
                                  "anchor file)")
    if token is None:
        return
    verdict = verify_token(token, bytes.fromhex(row.hash))
    if verdict.problem is not None:
        _problem(report, seq, f"checkpoint {seq}: time-stamp does not match: {verdict.problem}")
        return
    report.timestamped += 1
    if verdict.gen_time is not None and (report.last_timestamp is None or verdict.gen_time > report.last_timestamp):
        report.last_timestamp = verdict.gen_time


def _b64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except ValueError:
        return b""
