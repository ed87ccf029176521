"""Audit anchors: the pins of the audit key and of the TSA certificate, and a copy of every audit
checkpoint, kept in two places.

* The ``audit_anchors`` table, shared by every node of an installation: whichever node seals, and
  whichever runs ``remotesign audit verify``, all see every anchor. A checkpoint's anchor row is
  written in the checkpoint's own transaction.
* The anchor file, each node's own witness outside the database: the node appends every anchor
  it writes. Checkpoints in the database can be deleted together with the events they seal (and
  their anchor rows) by anyone who can write the database; a line in an append-only file under
  the state directory cannot: an attacker with database access only cannot make "delete every
  event, the head and the checkpoints" look like a fresh install, to a verify run on a node whose
  file holds the lost checkpoints. The file is JSON lines, written with O_APPEND in one ``write``
  and fsynced per line, mode 0600. For stronger guarantees put it on storage the service can only
  append to (``chattr +a``, a WORM mount) with ``REMOTESIGN_AUDIT_ANCHOR_FILE``. A file written
  before the table existed is imported into it at start (``Anchors.import_file``), so an existing
  instance keeps its history.

Records (a file line, a table row's ``record``): ``{"kind": "key", ...}`` pins the audit key (its
id and SHA-256 of its public key), ``{"kind": "tsa", ...}`` the TSA certificate (SHA-256) the
checkpoints are time-stamped under; ``{"kind": "checkpoint", ...}`` repeats a checkpoint (seq,
hash, at, key, signature, SHA-256 of its time-stamp token). A checkpoint record is signed, so
neither the file nor the table can be edited without the audit key.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from remotesign.storage import process_id
from remotesign.storage.db import Database
from remotesign.storage.models import AuditAnchor


@dataclass(frozen=True)
class PinnedKey:
    key_id: str
    spki_sha256: str


@dataclass(frozen=True)
class AnchoredCheckpoint:
    seq: int
    hash: str
    at: str
    key_id: str
    signature_b64: str
    tst_sha256: str | None


@dataclass
class AnchorContents:
    """What the file (or the table) says; ``problems`` are records that cannot be read (with their
    line numbers or row ids); ``records`` every readable one, in order."""

    exists: bool
    keys: list[PinnedKey] = field(default_factory=list)
    tsa_certificates: list[str] = field(default_factory=list)  # SHA-256 of pinned TSA certificates
    checkpoints: dict[int, AnchoredCheckpoint] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)


def encode(record: dict[str, Any]) -> str:
    return json.dumps(record, sort_keys=True, separators=(",", ":"))


def ref_of(record: dict[str, Any]) -> tuple[str, str, int | None]:
    """(kind, what is anchored, seq) of a record: one anchor of each kind per ``ref``."""
    kind = str(record["kind"])
    if kind == "key":
        return kind, f"{record['key_id']}:{record['spki_sha256']}", None
    if kind == "tsa":
        return kind, str(record["cert_sha256"]), None
    if kind == "checkpoint":
        return kind, str(int(record["seq"])), int(record["seq"])
    raise ValueError(f"unknown kind {kind!r}")


def parse(items: Iterable[tuple[str, bytes | str]], out: AnchorContents) -> AnchorContents:
    """Read ``(where, JSON)`` records into ``out`` (``where`` names them in problems)."""
    for where, raw in items:
        try:
            rec = json.loads(raw)
            if rec["kind"] == "key":
                out.keys.append(PinnedKey(str(rec["key_id"]), str(rec["spki_sha256"])))
            elif rec["kind"] == "tsa":
                out.tsa_certificates.append(str(rec["cert_sha256"]))
            elif rec["kind"] == "checkpoint":
                cp = AnchoredCheckpoint(int(rec["seq"]), str(rec["hash"]), str(rec["at"]), str(rec["key_id"]),
                                        str(rec["sig"]), rec.get("tst_sha256"))
                previous = out.checkpoints.get(cp.seq)
                if previous is not None and previous != cp:
                    out.problems.append(f"{where}: a second, different checkpoint {cp.seq}")
                out.checkpoints.setdefault(cp.seq, cp)
            else:
                out.problems.append(f"{where}: unknown kind {rec['kind']!r}")
                continue
            out.records.append(rec)
        except (ValueError, KeyError, TypeError):
            out.problems.append(f"{where} is not a valid record")
    return out


class AnchorFile:
    """Append and read the anchor file; appends from several processes interleave whole lines."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, record: dict[str, Any]) -> None:
        line = (encode(record) + "\n").encode()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)  # one write: O_APPEND keeps concurrent lines whole on local files
            os.fsync(fd)
        finally:
            os.close(fd)

    def read(self) -> AnchorContents:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return AnchorContents(exists=False)
        lines = raw.split(b"\n")
        complete = lines[:-1]  # the part after the last newline is empty, or a write cut short by a crash
        return parse(((f"anchor file line {number}", line) for number, line in enumerate(complete, start=1)
                      if line.strip()), AnchorContents(exists=True))


class AnchorTable:
    """The ``audit_anchors`` table."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def read(self) -> AnchorContents:
        with self.db.session() as s:
            rows = s.execute(select(AuditAnchor.id, AuditAnchor.record).order_by(AuditAnchor.id)).all()
        return parse(((f"anchor table row {row_id}", record) for row_id, record in rows), AnchorContents(bool(rows)))

    @staticmethod
    def row(record: dict[str, Any], node: str | None = None) -> AuditAnchor:
        kind, ref, seq = ref_of(record)
        return AuditAnchor(kind=kind, ref=ref, seq=seq, record=encode(record), node=node or str(process_id.current()),
                           created_at=datetime.now(timezone.utc))

    def add_missing(self, records: Iterable[dict[str, Any]], node: str | None = None) -> int:
        """Insert the records whose (kind, ref) has no row yet; returns how many were inserted."""
        wanted = {ref_of(r)[:2]: r for r in records}
        for _attempt in range(3):  # a concurrent writer may insert one of them meanwhile
            try:
                with self.db.session() as s:
                    have = {(kind, ref) for kind, ref in s.execute(select(AuditAnchor.kind, AuditAnchor.ref))}
                    missing = [r for key, r in wanted.items() if key not in have]
                    s.add_all(self.row(r, node) for r in missing)
                return len(missing)
            except IntegrityError:
                continue
        return 0


class Anchors:
    """The instance's anchors: the shared table and this node's anchor file."""

    def __init__(self, db: Database, path: Path) -> None:
        self.table = AnchorTable(db)
        self.file = AnchorFile(path)

    @property
    def path(self) -> Path:
        return self.file.path

    def import_file(self) -> int:
        """Copy into the table what this node's anchor file holds and the table lacks (a file
        written before the table existed; once: the file's later lines are in the table already)."""
        contents = self.file.read()
        if not contents.records:
            return 0
        return self.table.add_missing(contents.records, node=f"imported from {self.path}"[:100])

    def _pin(self, record: dict[str, Any], in_file: bool) -> bool:
        wrote = self.table.add_missing([record]) > 0
        if not in_file:
            self.file.append(record)
            wrote = True
        return wrote

    def pin_key(self, key_id: str, spki_sha256: str, at: str) -> bool:
        """Record the audit key once (in the table, and in this node's file); True when written."""
        in_file = any(k.key_id == key_id and k.spki_sha256 == spki_sha256 for k in self.file.read().keys)
        return self._pin({"kind": "key", "key_id": key_id, "spki_sha256": spki_sha256, "at": at}, in_file)

    def pin_tsa(self, cert_sha256: str, at: str) -> bool:
        """Record the TSA certificate checkpoints are time-stamped under (once per certificate)."""
        in_file = cert_sha256 in self.file.read().tsa_certificates
        return self._pin({"kind": "tsa", "cert_sha256": cert_sha256, "at": at}, in_file)

    def add_checkpoint(self, s: Session, record: dict[str, Any]) -> None:
        """The checkpoint's anchor row, in the transaction ``s`` that stores the checkpoint."""
        s.add(self.table.row(record))

    def witness(self, record: dict[str, Any]) -> None:
        """This node's out-of-database copy, appended once the checkpoint is committed."""
        self.file.append(record)
