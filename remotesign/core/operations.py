"""Leases and result names of signing operations: what makes a finalize or archive crash-safe.

A finalize (or archive) claims its operation with a lease: an owner (``<process id>#<claim>``,
storage/process_id.py) and an expiry. A claim may be taken over by a retry once it is *abandoned*:
its lease expired, or its process is known dead (same host, pid gone). A claim never outlives its
process by more than the lease, and a live one is never taken before it expires, so the lease must
exceed the longest legitimate finalize (REMOTESIGN_OPERATION_LEASE).

The result of an operation is written under a name derived from the operation itself, with an
exclusive create; it becomes a session document in the same transaction that moves the operation
on, and only while the writer still holds the lease. So a process that dies after writing the
result but before recording it leaves a complete file that the retry adopts instead of signing
again: one signature, never two, and none lost.
"""

from __future__ import annotations

import os
import secrets
import signal
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from remotesign.storage import process_id
from remotesign.storage.models import SigningOperation
from remotesign.storage.times import aware as _aware

CLAIMED = ("finalizing", "archiving")
_NAMES = uuid.UUID("6f1d7f0e-3c4b-4a8e-9a57-52b8e2f4c1a0")


class LeaseLost(Exception):
    """The operation was taken over (or deleted) while this process worked on it: it must not record
    anything and must not delete what it wrote (the new owner may adopt it)."""


@dataclass(frozen=True)
class Lease:
    owner: str
    expires_at: datetime



def crash_point(name: str) -> None:
    """Testing aid for the recovery paths: when REMOTESIGN_CRASH_AT lists ``name``, the process dies
    here as a power cut or ``kill -9`` would (no cleanup, no response). Unset in production."""
    points = os.environ.get("REMOTESIGN_CRASH_AT")
    if points and name in points.split(","):
        os.kill(os.getpid(), signal.SIGKILL)


def pause_point(name: str, timeout: float = 60.0) -> None:
    """Testing aid for races: when REMOTESIGN_PAUSE_AT lists ``name``, the call waits here until the
    file ``$REMOTESIGN_HOME/resume-<name>`` exists (at most ``timeout`` seconds), so a test can act
    while it is held at a known point. Unset in production."""
    points = os.environ.get("REMOTESIGN_PAUSE_AT")
    if not points or name not in points.split(","):
        return
    import time
    from pathlib import Path

    resume = Path(os.environ.get("REMOTESIGN_HOME", "var")) / f"resume-{name}"
    deadline = time.monotonic() + timeout
    while not resume.exists() and time.monotonic() < deadline:
        time.sleep(0.05)


def new_lease(seconds: int, now: datetime | None = None) -> Lease:
    now = now or datetime.now(timezone.utc)
    return Lease(f"{process_id.current()}#{secrets.token_hex(4)}", now + timedelta(seconds=seconds))


def abandoned(owner: str | None, expires_at: datetime | None, now: datetime | None = None) -> bool:
    """May a claim with this lease be taken over? (A claim without a lease predates leases: yes.)"""
    if owner is None or expires_at is None:
        return True
    if _aware(expires_at) <= (now or datetime.now(timezone.utc)):
        return True
    return process_id.known_dead(process_id.ProcessId.parse(owner))


def in_progress(op: SigningOperation | None) -> bool:
    """An operation some live process is finalizing or archiving right now."""
    return op is not None and op.status in CLAIMED and not abandoned(op.lease_owner, op.lease_expires_at)


def finalize_result_id(op: SigningOperation) -> str:
    """The blob name (and document id) of the signed document this preparation produces."""
    return str(uuid.uuid5(_NAMES, f"finalize:{op.session_id}:{op.digest.hex()}"))


def archive_result_id(session_id: str, signed_document_id: str) -> str:
    """The blob name (and document id) of the archive time-stamped version of a signed document."""
    return str(uuid.uuid5(_NAMES, f"archive:{session_id}:{signed_document_id}"))


def leftover_blobs(op: SigningOperation) -> list[str]:
    """Blobs of ``op`` that no session document owns: the prepared file, and the unrecorded result
    of a claim in progress. Deleted with the operation."""
    names = [op.prepared_blob] if op.prepared_blob else []
    if op.status == "finalizing":
        names.append(finalize_result_id(op))
    elif op.status == "archiving" and op.result_document_id:
        names.append(archive_result_id(op.session_id, op.result_document_id))
    return names
