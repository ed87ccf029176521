"""Verify the audit log with its checkpoints: the hash chain, every checkpoint's signature and
time-stamp, the checkpoints against the anchors (the shared anchor table and this node's anchor
file), and the chain against the checkpoints.

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
from remotesign.storage.audit_anchor import AnchorContents, AnchoredCheckpoint, Anchors
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
    anchor_file_missing: bool = False  # this node keeps no anchor file (yet): the table stands alone

    @property
    def unsealed(self) -> int:
        return max(0, self.events - self.last_sealed)


def _problem(report: SealReport, seq: int | None, message: str) -> None:
    report.problems.append(AuditProblem(seq, message))


def _check_key(report: SealReport, key: AuditKeyFacts | None, local: AnchorContents, shared: AnchorContents,
               has_checkpoints: bool) -> bytes | None:
    """The public key (DER) checkpoints are verified with, or None when there is none to trust."""
    if key is None:
        if local.keys or shared.keys or has_checkpoints:
            _problem(report, None, "the audit key is missing from the key store: checkpoints cannot be verified")
        return None
    for source, anchors in (("anchor file", local), ("anchor table", shared)):
        pinned = [k for k in anchors.keys if k.key_id == key.key_id]
        if anchors.keys and not any(k.spki_sha256 == spki_sha256(key.public_key_der) for k in pinned):
            _problem(report, None, f"the audit key in the database is not the key pinned in the {source} "
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


def verify_sealed(audit: AuditLog, key: AuditKeyFacts | None, anchor: Anchors, verify_token: TokenVerifier,
                  tsa_cert_sha256: str | None = None) -> SealReport:
    """Everything ``remotesign audit verify`` checks, problems in a stable order. ``tsa_cert_sha256``:
    the TSA certificate tokens are checked against, compared with the ones the anchors pin."""
    report = SealReport()
    # the file, then the table, then the checkpoints: a checkpoint committed meanwhile (with its
    # anchor row, then its line) shows only in the later reads, never as an anchor without its row
    local = anchor.file.read()
    shared = anchor.table.read()
    for message in (*local.problems, *shared.problems):
        _problem(report, None, message)
    with audit.db.session() as s:
        rows = {cp.seq: cp for cp in s.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.seq))}
    report.anchor_file_missing = not local.exists
    if rows and not local.exists and not shared.exists:
        _problem(report, None, f"the anchor file {anchor.path} is missing and the anchor table is empty, but the "
                               f"database holds {len(rows)} checkpoint(s)")
    for source, anchors in (("anchor file", local), ("anchor table", shared)):
        if tsa_cert_sha256 and anchors.tsa_certificates and tsa_cert_sha256 not in anchors.tsa_certificates:
            _problem(report, None, f"the TSA certificate in the database is not the one pinned in the {source} "
                                   "(certificate record replaced)")
            break
    public_der = _check_key(report, key, local, shared, bool(rows or local.checkpoints or shared.checkpoints))
    expected: dict[int, str] = {}  # seq -> chain hash a valid signature vouches for
    if public_der is not None and key is not None:
        expected = _check_checkpoints(report, public_der, key, rows, local.checkpoints, shared.checkpoints,
                                      verify_token)

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


def _same(line: AnchoredCheckpoint, row: AuditCheckpoint) -> bool:
    return (line.hash, line.at, _b64(line.signature_b64)) == (row.hash, iso(row.at), row.signature)


def _check_checkpoints(report: SealReport, public_der: bytes, key: AuditKeyFacts,
                       rows: dict[int, AuditCheckpoint], filed: dict[int, AnchoredCheckpoint],
                       tabled: dict[int, AnchoredCheckpoint], verify_token: TokenVerifier) -> dict[int, str]:
    expected: dict[int, str] = {}
    for seq in sorted(set(rows) | set(filed) | set(tabled)):
        row = rows.get(seq)
        valid_row = row is not None and _signed_ok(public_der, seq, row.hash, iso(row.at), row.key_id, key,
                                                   row.signature)
        if row is not None and not valid_row:
            _problem(report, seq, f"checkpoint {seq}: its signature does not verify with the audit key "
                                  "(forged or altered checkpoint)")
        valid_lines: list[tuple[str, AnchoredCheckpoint]] = []
        for source, what, line in (("anchor file", "line", filed.get(seq)), ("anchor table", "row", tabled.get(seq))):
            if line is None:
                continue
            if not _signed_ok(public_der, seq, line.hash, line.at, line.key_id, key, _b64(line.signature_b64)):
                _problem(report, seq, f"checkpoint {seq} in the {source}: its signature does not verify with the "
                                      f"audit key (forged or altered {what})")
                continue
            valid_lines.append((source, line))
        if row is None and seq in filed:
            _problem(report, seq, f"checkpoint {seq} is in the anchor file but was deleted from the database")
        elif row is None and seq in tabled:
            _problem(report, seq, f"checkpoint {seq} is in the anchor table but its checkpoint row was deleted")
        elif row is not None and valid_row:
            for source, line in valid_lines:
                if not _same(line, row):
                    _problem(report, seq, f"checkpoint {seq} in the database differs from the {source}")
                    break
        if row is None and len(valid_lines) == 2 and valid_lines[0][1] != valid_lines[1][1]:
            _problem(report, seq, f"checkpoint {seq} in the anchor file differs from the anchor table")
        if row is not None and valid_row:
            _check_token(report, seq, row, valid_lines, verify_token)
            if seq not in filed:
                report.database_only += 1
        if valid_lines:
            expected[seq] = valid_lines[0][1].hash  # the file's, when it has one: out of the database's reach
        elif valid_row and row is not None:
            expected[seq] = row.hash
    report.checkpoints = len(expected)
    return expected


def _check_token(report: SealReport, seq: int, row: AuditCheckpoint, lines: list[tuple[str, AnchoredCheckpoint]],
                 verify_token: TokenVerifier) -> None:
    token = row.timestamp_token
    for source, line in lines:
        if line.tst_sha256 is None:
            continue
        if token is None:
            _problem(report, seq, f"checkpoint {seq}: its time-stamp token was removed")
            return
        if hashlib.sha256(token).hexdigest() != line.tst_sha256:
            _problem(report, seq, f"checkpoint {seq}: its time-stamp token was replaced (not the one in the "
                                  f"{source})")
            break
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
