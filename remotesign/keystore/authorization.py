"""The key store's own check that a named authorization really allows this identity-key use.

Callers name the authorization (``usage.KeyUseAuthorization``); this module looks it up where the
domain recorded it, without importing the domain core: the SCAL2 credential's ``scal2.authorized``
audit event (written by ``core/sole_control.py`` when the token is spent), or the device-approved
signature process (``core/processes.py``, still pending while its signature is made). A reference
that is made up, for another identity, another key or other digests is refused before signing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timezone

from sqlalchemy import Connection, bindparam, select
from sqlalchemy.orm import Session

from remotesign.keystore.usage import DEVICE_PROCESS, AuthorizationRefused, KeyUseAuthorization
from remotesign.storage.audit import PendingAppends
from remotesign.storage.models import AuditEvent, SignatureProcess, SignIdentity
from remotesign.storage.times import aware as _aware

SCAL2_EVENT = "scal2.authorized"  # core/sole_control.py
RAW_PROCESS, PENDING = "sign:raw", "pending"  # core/processes.py
_SI = SignIdentity.__table__
_IDENTITY_KEY = select(_SI.c.key_id).where(_SI.c.id == bindparam("identity_id"))



def check(s: Session, auth: KeyUseAuthorization, key_id: str, digests: Sequence[tuple[str, bytes]]) -> None:
    """Raise AuthorizationRefused unless ``auth`` allows signing ``digests`` (hash name, value)
    with the identity key ``key_id``."""
    identity = s.get(SignIdentity, auth.identity_id)  # the caller's transaction may hold it already
    if identity is None or identity.key_id != key_id:
        raise AuthorizationRefused(f"sign identity {auth.identity_id} does not hold key {key_id}")
    if auth.kind == DEVICE_PROCESS:
        _check_process(s, auth, digests)
    else:
        _check_scal2(s, auth, digests)


def check_pending(conn: Connection, pending: PendingAppends, auth: KeyUseAuthorization, key_id: str,
                  digests: Sequence[tuple[str, bytes]]) -> None:
    """``check`` for a transaction run with Core statements on ``conn``: the identity is read on it
    (under the write lock the spent token took) and the SCAL2 authorization must be among the
    events ``pending`` appended in this very transaction; a device approval is not accepted here."""
    held = conn.execute(_IDENTITY_KEY, {"identity_id": auth.identity_id}).scalar()
    if held is None or held != key_id:
        raise AuthorizationRefused(f"sign identity {auth.identity_id} does not hold key {key_id}")
    if auth.kind == DEVICE_PROCESS:
        raise AuthorizationRefused(f"{auth.reference} is not a SCAL2 authorization of this transaction")
    event = pending.find(auth.scal2_seq)
    if event is None:
        raise AuthorizationRefused(f"{auth.reference} is no SCAL2 authorization for identity {auth.identity_id}")
    _check_scal2_event(event.event, event.subject, event.details, auth, digests)


def _check_scal2(s: Session, auth: KeyUseAuthorization, digests: Sequence[tuple[str, bytes]]) -> None:
    event = s.get(AuditEvent, auth.scal2_seq)
    if event is None:
        raise AuthorizationRefused(f"{auth.reference} is no SCAL2 authorization for identity {auth.identity_id}")
    _check_scal2_event(event.event, event.subject, event.details, auth, digests)


def _check_scal2_event(name: str, subject: str, details_json: str | None, auth: KeyUseAuthorization,
                       digests: Sequence[tuple[str, bytes]]) -> None:
    if name != SCAL2_EVENT or subject != auth.identity_id:
        raise AuthorizationRefused(f"{auth.reference} is no SCAL2 authorization for identity {auth.identity_id}")
    details = json.loads(details_json or "{}")
    if details.get("token_sha256_prefix") != auth.scal2_token_prefix:
        raise AuthorizationRefused(f"{auth.reference} names another signing token")
    if details.get("digests") not in (None, len(digests)):
        raise AuthorizationRefused(f"{auth.reference} covers {details.get('digests')} digests, not {len(digests)}")
    if details.get("digest_types") not in (None, [h for h, _ in digests]):
        raise AuthorizationRefused(f"{auth.reference} covers digests of {details.get('digest_types')}")


def _check_process(s: Session, auth: KeyUseAuthorization, digests: Sequence[tuple[str, bytes]]) -> None:
    p = s.get(SignatureProcess, auth.process_id)
    if (p is None or p.operation_type != RAW_PROCESS or p.sign_identity_id != auth.identity_id
            or p.status != PENDING or _aware(p.expires_at) <= datetime.now(timezone.utc)):
        raise AuthorizationRefused(f"{auth.reference} is no pending device-approved signature of this identity")
    if list(digests) != [(p.digest_algorithm, p.digest_value)]:
        raise AuthorizationRefused(f"{auth.reference} approved another digest")
