"""The audit anchor file: a copy of every audit checkpoint outside the database.

Checkpoints in the database can be deleted together with the events they seal by anyone who can
write the database. A line in an append-only file under the state directory cannot: an attacker
with database access only cannot make "delete every event, the head and the checkpoints" look
like a fresh install. The file is JSON lines, written with O_APPEND in one ``write`` and fsynced
per line, mode 0600. For stronger guarantees put it on storage the service can only append to
(``chattr +a``, a WORM mount) with ``REMOTESIGN_AUDIT_ANCHOR_FILE``.

Lines: ``{"kind": "key", ...}`` pins the audit key (its id and SHA-256 of its public key),
``{"kind": "tsa", ...}`` the TSA certificate (SHA-256) the checkpoints are time-stamped under;
``{"kind": "checkpoint", ...}`` repeats a checkpoint (seq, hash, at, key, signature, SHA-256 of
its time-stamp token). A checkpoint line is signed, so the file cannot be edited either without
the audit key.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


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
    """What the file says; ``problems`` are lines that cannot be read (with their line numbers)."""

    exists: bool
    keys: list[PinnedKey] = field(default_factory=list)
    tsa_certificates: list[str] = field(default_factory=list)  # SHA-256 of pinned TSA certificates
    checkpoints: dict[int, AnchoredCheckpoint] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


class AnchorFile:
    """Append and read the anchor file; appends from several processes interleave whole lines."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, record: dict[str, Any]) -> None:
        line = (json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n").encode()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)  # one write: O_APPEND keeps concurrent lines whole on local files
            os.fsync(fd)
        finally:
            os.close(fd)

    def pin_key(self, key_id: str, spki_sha256: str, at: str) -> bool:
        """Record the audit key once; returns True when a line was written."""
        if any(k.key_id == key_id and k.spki_sha256 == spki_sha256 for k in self.read().keys):
            return False
        self.append({"kind": "key", "key_id": key_id, "spki_sha256": spki_sha256, "at": at})
        return True

    def pin_tsa(self, cert_sha256: str, at: str) -> bool:
        """Record the TSA certificate checkpoints are time-stamped under (once per certificate)."""
        if cert_sha256 in self.read().tsa_certificates:
            return False
        self.append({"kind": "tsa", "cert_sha256": cert_sha256, "at": at})
        return True

    def read(self) -> AnchorContents:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return AnchorContents(exists=False)
        out = AnchorContents(exists=True)
        lines = raw.split(b"\n")
        complete = lines[:-1]  # the part after the last newline is empty, or a write cut short by a crash
        for number, line in enumerate(complete, start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                if rec["kind"] == "key":
                    out.keys.append(PinnedKey(str(rec["key_id"]), str(rec["spki_sha256"])))
                elif rec["kind"] == "tsa":
                    out.tsa_certificates.append(str(rec["cert_sha256"]))
                elif rec["kind"] == "checkpoint":
                    cp = AnchoredCheckpoint(int(rec["seq"]), str(rec["hash"]), str(rec["at"]), str(rec["key_id"]),
                                            str(rec["sig"]), rec.get("tst_sha256"))
                    previous = out.checkpoints.get(cp.seq)
                    if previous is not None and previous != cp:
                        out.problems.append(f"anchor file line {number}: a second, different checkpoint {cp.seq}")
                    out.checkpoints.setdefault(cp.seq, cp)
                else:
                    out.problems.append(f"anchor file line {number}: unknown kind {rec['kind']!r}")
            except (ValueError, KeyError, TypeError):
                out.problems.append(f"anchor file line {number} is not a valid record")
        return out
