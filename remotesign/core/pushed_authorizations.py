"""Pushed authorization requests (RFC 9126): a client posts its authorization request's
parameters, authenticated, and sends the browser only an opaque ``request_uri``; the parameters
are then redeemed once, by the same client, before they expire. The parameters are the facade's
(stored as given); the service only keeps, expires and spends them."""

from __future__ import annotations

import json
import secrets
from datetime import datetime, timedelta, timezone

from sqlalchemy import delete, update

from remotesign.core.errors import CoreError
from remotesign.storage.db import Database
from remotesign.storage.models import PushedAuthorization
from remotesign.storage.times import aware

PREFIX = "urn:ietf:params:oauth:request_uri:"


class PushedAuthorizations:
    def __init__(self, db: Database, *, ttl: int = 90) -> None:
        self.db = db
        self.ttl = ttl

    def push(self, tenant_id: str, parameters: dict[str, str]) -> str:
        """Keep ``parameters`` for ``tenant_id``'s next authorization; returns the request_uri."""
        request_id = secrets.token_urlsafe(32)
        now = datetime.now(timezone.utc)
        with self.db.session() as s:
            s.add(PushedAuthorization(id=request_id, tenant_id=tenant_id, parameters=json.dumps(parameters),
                                      created_at=now, expires_at=now + timedelta(seconds=self.ttl)))
            s.execute(delete(PushedAuthorization).where(PushedAuthorization.expires_at < now - timedelta(hours=1)))
        return PREFIX + request_id

    def redeem(self, request_uri: str, tenant_id: str | None) -> dict[str, str]:
        """The parameters pushed under ``request_uri`` (by ``tenant_id`` when given), spent by this
        call; CoreError when unknown, used, expired or another client's."""
        refused = CoreError("invalid_request", "request_uri is unknown, used or expired; start again from the "
                                               "application")
        if not request_uri.startswith(PREFIX) or len(request_uri) > 200:
            raise refused
        now = datetime.now(timezone.utc)
        with self.db.session() as s:
            row = s.get(PushedAuthorization, request_uri[len(PREFIX):])
            if row is None or row.used_at is not None or aware(row.expires_at) <= now or \
                    (tenant_id is not None and row.tenant_id != tenant_id):
                raise refused
            used = s.execute(update(PushedAuthorization).where(PushedAuthorization.id == row.id,
                                                               PushedAuthorization.used_at.is_(None))
                             .values(used_at=now)).rowcount
            if used != 1:
                raise refused
            return dict(json.loads(row.parameters))
