"""Sharing a session with persons (the eParaksts Share API): a relying party names natural persons
by their personal code, so that they see the session's documents to sign them. Shares belong to
the session: they end when it is closed or expires, and a relying party sees only its own."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import delete, select

from remotesign.core.errors import CoreError
from remotesign.core.sessions import SessionService
from remotesign.storage.audit import AuditLog
from remotesign.storage.db import Database
from remotesign.storage.models import SessionShare, SigningSession
from remotesign.storage.times import aware as _aware

#: The national part of a Latvian personal code, as the Share API names persons (not PNOLV-…).
PERSON_ID = re.compile(r"^\d{6}-\d{5}$")
MAX_PERSONS = 100
MAX_NOTE = 2000
MAX_RIGHTS_JSON = 2000


class ShareError(CoreError):
    """A refused share request; ``status`` is the HTTP status the facade uses."""


@dataclass(frozen=True)
class Share:
    session_id: str
    person_id: str
    access_rights: Any
    note: str
    created_at: datetime


def _share(row: SessionShare) -> Share:
    return Share(row.session_id, row.person_id, json.loads(row.access_rights), row.note,
                 _aware(row.created_at) or row.created_at)


def check_person_id(person_id: str) -> str:
    if not PERSON_ID.match(person_id or ""):
        raise ShareError("invalid_person_id", "personId must be a personal code XXXXXX-YYYYY (without PNOLV-)")
    return person_id


class ShareService:
    def __init__(self, db: Database, sessions: SessionService, audit: AuditLog) -> None:
        self.db = db
        self.sessions = sessions
        self.audit = audit

    def share(self, tenant_id: str, session_id: str, persons: list[tuple[str, Any]], note: str,
              actor: str) -> list[Share]:
        """Share with each (personId, accessRights); sharing again replaces rights and note."""
        self.sessions.require(tenant_id, session_id)
        if not 1 <= len(persons) <= MAX_PERSONS:
            raise ShareError("invalid_persons", f"persons must list 1 to {MAX_PERSONS} persons")
        if len(note) > MAX_NOTE:
            raise ShareError("invalid_note", f"note is longer than {MAX_NOTE} characters")
        rows = []
        for person_id, rights in persons:
            encoded = json.dumps(rights, ensure_ascii=False)
            if len(encoded) > MAX_RIGHTS_JSON:
                raise ShareError("invalid_access_rights", "accessRights is too large")
            rows.append((check_person_id(person_id), encoded))
        now = datetime.now(timezone.utc)
        with self.db.session() as s:
            for person_id, encoded in rows:
                s.merge(SessionShare(session_id=session_id, person_id=person_id, tenant_id=tenant_id,
                                     access_rights=encoded, note=note, created_at=now))
        self.audit.append("session.shared", actor=actor, tenant_id=tenant_id, subject=session_id,
                          details={"persons": [p for p, _ in rows]})
        return self.persons(tenant_id, session_id)

    def persons(self, tenant_id: str, session_id: str) -> list[Share]:
        self.sessions.require(tenant_id, session_id)
        with self.db.session() as s:
            rows = s.scalars(select(SessionShare).where(SessionShare.session_id == session_id,
                                                        SessionShare.tenant_id == tenant_id)
                             .order_by(SessionShare.created_at, SessionShare.person_id)).all()
            return [_share(r) for r in rows]

    def unshare(self, tenant_id: str, session_id: str, person_id: str, actor: str) -> None:
        self.sessions.require(tenant_id, session_id)
        with self.db.session() as s:
            gone = s.execute(delete(SessionShare).where(SessionShare.session_id == session_id,
                                                        SessionShare.tenant_id == tenant_id,
                                                        SessionShare.person_id == check_person_id(person_id))).rowcount
        if gone != 1:
            raise ShareError("not_shared", f"the session is not shared with {person_id}", status=404)
        self.audit.append("session.unshared", actor=actor, tenant_id=tenant_id, subject=session_id,
                          details={"person": person_id})

    def sessions_of(self, tenant_id: str, person_id: str) -> list[Share]:
        """The relying party's live sessions shared with the person."""
        check_person_id(person_id)
        now = datetime.now(timezone.utc)
        with self.db.session() as s:
            rows = s.scalars(select(SessionShare).join(SigningSession, SigningSession.id == SessionShare.session_id)
                             .where(SessionShare.tenant_id == tenant_id, SessionShare.person_id == person_id,
                                    SigningSession.closed_at.is_(None), SigningSession.expires_at > now)
                             .order_by(SessionShare.created_at)).all()
            return [_share(r) for r in rows]
