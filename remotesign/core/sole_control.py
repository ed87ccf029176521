"""The SCAL2 invariant (CEN EN 419 241-1): a signing credential obtained for a digests summary
signs exactly those digests, with exactly the identity the user chose, once, before it expires.

The summary is H(d1 || d2 || ...), the TrustedX wire form. A bare concatenation does not say where
one digest ends, so [X1, X2] and the single 64-byte "digest" X1||X2 share a summary. The
authorization therefore binds a typed list: by default every digest is of the summary's own hash
algorithm and has exactly its length, so the list is the concatenation cut into equal, typed
pieces, in order; a client signing digests of other or mixed algorithms declares them, in order,
with the authorization request (``digests_algorithms=SHA256,SHA512``), and then exactly that
list matches. Nothing else does.

Every facade that signs with a server-held key goes through ``SoleControl.authorize`` before the
key store is touched; every refusal is written to the audit log with its reason.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import Connection, bindparam, update
from sqlalchemy.orm import Session

from remotesign.storage.audit import AuditLog, PendingAppends
from remotesign.core.scopes import USE_SERVER
from remotesign.core.tenants import TokenInfo
from remotesign.storage.db import Database
from remotesign.storage.models import AccessToken

_TOKENS = AccessToken.__table__
_SPEND = (update(_TOKENS)
          .where(_TOKENS.c.token_hash == bindparam("spend_hash"), _TOKENS.c.consumed_at.is_(None),
                 _TOKENS.c.expires_at > bindparam("spend_now"))
          .values(consumed_at=bindparam("spend_now")))

SUMMARY_ALGORITHMS = {"SHA256": "sha256", "SHA384": "sha384", "SHA512": "sha512", "SHA1": "sha1"}


class SoleControlRefused(Exception):
    """The credential does not authorize this signature. ``reason`` is stable and audited."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def summary_algorithm(name: str, *, allow_sha1: bool = False) -> str:
    """hashlib name of a ``digests_summary_algorithm`` (SHA256 / SHA-256 / sha256 are all accepted)."""
    key = name.upper().replace("-", "")
    if key not in SUMMARY_ALGORITHMS or (key == "SHA1" and not allow_sha1):
        raise ValueError(f"unsupported digests_summary_algorithm {name!r}")
    return SUMMARY_ALGORITHMS[key]


@dataclass(frozen=True)
class TypedDigest:
    """One digest to be signed, with the hash algorithm (hashlib name) it claims to be."""

    hash_name: str
    value: bytes


MAX_DIGESTS = 1000


@functools.lru_cache(maxsize=64)
def _digest_size(hash_name: str) -> int:
    return hashlib.new(hash_name).digest_size


def parse_digest_types(text: str | None, *, allow_sha1: bool = False) -> tuple[str, ...] | None:
    """``SHA256,SHA512`` (commas or spaces) -> ("sha256", "sha512"); None when not given."""
    if not text:
        return None
    names = [x for x in text.replace(",", " ").split() if x]
    if not 1 <= len(names) <= MAX_DIGESTS:
        raise ValueError(f"1 to {MAX_DIGESTS} algorithms")
    return tuple(summary_algorithm(n, allow_sha1=allow_sha1) for n in names)


def digests_summary(digests: list[bytes], algorithm: str) -> str:
    """base64(H(d1 || d2 || ...)) over the digests in signing order; for one digest this is
    b64(H(digest)), the form eParaksts' CalculateDigest returns and TrustedX checks."""
    h = hashlib.new(summary_algorithm(algorithm, allow_sha1=True))
    for d in digests:
        h.update(d)
    return base64.b64encode(h.digest()).decode()


class SoleControl:
    def __init__(self, db: Database, audit: AuditLog) -> None:
        self.db = db
        self.audit = audit

    def refuse(self, token: TokenInfo, reason: str, message: str, identity_id: str | None = None) -> SoleControlRefused:
        self.audit.append("scal2.refused", actor=token.user_id or token.client_id, tenant_id=token.tenant_id,
                          subject=identity_id or token.sign_identity_id or "",
                          details={"reason": reason, "token_sha256_prefix": token.token_hash[:16],
                                   "bound_identity": token.sign_identity_id, "bound_summary": token.digests_summary})
        return SoleControlRefused(reason, message)

    def refusal(self, token: TokenInfo, identity_id: str, digests: Sequence[TypedDigest] | None,
                scope: str = USE_SERVER, now: datetime | None = None) -> tuple[str, str] | None:
        """Why ``token`` cannot sign ``digests`` with ``identity_id``: (reason, message), or None when
        it can, as far as the token itself tells (that it is unspent is checked by spending it).
        ``digests`` None checks only what does not depend on them. Writes nothing."""
        now = now or datetime.now(timezone.utc)
        if token.user_id is None or scope not in token.scopes:
            return ("not_a_signing_token",
                    f"this signature needs a token from the user's consent with scope {scope}")
        if not token.sign_identity_id or not token.digests_summary or not token.digests_summary_algorithm:
            return ("unbound_token", "the token is not bound to an identity and digests")
        if token.sign_identity_id != identity_id:
            return ("identity_mismatch", "the token was issued for another sign identity")
        if token.expires_at <= now:
            return ("expired", "the signing authorization has expired")
        if digests is None:
            return None
        bound_hash = summary_algorithm(token.digests_summary_algorithm, allow_sha1=True)
        types = token.digest_types or (bound_hash,) * len(digests)
        if len(types) != len(digests):
            return ("digest_type_mismatch", f"the authorization covers {len(types)} digests, not {len(digests)}")
        for n, (d, wanted) in enumerate(zip(digests, types)):
            size = _digest_size(wanted)
            if d.hash_name != wanted or len(d.value) != size:
                return ("digest_type_mismatch",
                        f"digest {n} is not the {wanted} digest of {size} bytes the user authorized")
        if not digests:
            return ("digests_mismatch", "no digests to sign")
        actual = digests_summary([d.value for d in digests], token.digests_summary_algorithm)
        if not hmac.compare_digest(actual.encode(), token.digests_summary.encode()):
            return ("digests_mismatch", "the digests do not match the digests_summary the user authorized")
        return None

    def spend_in(self, conn: Connection, token: TokenInfo, now: datetime) -> bool:
        """Spend the token in the transaction of ``conn`` (SQLAlchemy Core): the conditional UPDATE
        that only one transaction can make; False when it was spent already or has expired."""
        return conn.execute(_SPEND, {"spend_hash": token.token_hash, "spend_now": now}).rowcount == 1

    def record_in(self, pending: PendingAppends, token: TokenInfo, identity_id: str,
                  digests: Sequence[TypedDigest]) -> str:
        """Append ``scal2.authorized`` for a token ``spend_in`` spent and ``refusal`` passed (with
        these digests) to ``pending``; returns the authorization's reference for the key store."""
        if token.user_id is None:
            raise ValueError("only a user's token authorizes a signature")
        seq = pending.append("scal2.authorized", actor=token.user_id, tenant_id=token.tenant_id,
                             subject=identity_id, details=self._details(token, digests))
        return f"scal2:{seq}:{token.token_hash[:16]}"

    @staticmethod
    def _details(token: TokenInfo, digests: Sequence[TypedDigest]) -> dict[str, object]:
        types = token.digest_types or (summary_algorithm(token.digests_summary_algorithm or "", allow_sha1=True),) \
            * len(digests)
        return {"digests_summary": token.digests_summary, "digests": len(digests), "digest_types": list(types),
                "token_sha256_prefix": token.token_hash[:16]}

    def authorize(self, token: TokenInfo, identity_id: str, digests: Sequence[TypedDigest],
                  scope: str = USE_SERVER, *, session: Session | None = None) -> str:
        """Spend ``token`` on signing ``digests`` (typed, in order) with ``identity_id``, or raise
        SoleControlRefused. Returns the authorization's reference for the key store's audit.
        ``scope``: the consent the signature needs (``use:device`` for a request sent to the
        user's device with a token bound to digests).

        With ``session`` the token is spent and ``scal2.authorized`` appended in the caller's
        transaction, which the caller commits (the key store does, before it signs): the spend
        is still one conditional UPDATE, so of two calls with one token only one can commit it.
        The session must not have written anything yet: a refusal rolls it back before auditing."""
        now = datetime.now(timezone.utc)
        refusal = self.refusal(token, identity_id, digests, scope, now)
        if refusal is not None:
            raise self.refuse(token, refusal[0], refusal[1], identity_id)
        spend = (update(AccessToken)
                 .where(AccessToken.token_hash == token.token_hash, AccessToken.consumed_at.is_(None),
                        AccessToken.expires_at > now)
                 .values(consumed_at=now))
        details = self._details(token, digests)
        if session is not None:
            if session.execute(spend).rowcount != 1:
                session.rollback()  # release the write lock before the refusal is appended
                raise self.refuse(token, "replayed", "the signing authorization has been used already", identity_id)
            seq = self.audit.append_in(session, "scal2.authorized", actor=token.user_id, tenant_id=token.tenant_id,
                                       subject=identity_id, details=details)
            return f"scal2:{seq}:{token.token_hash[:16]}"
        with self.db.session() as s:
            spent = s.execute(spend).rowcount
        if spent != 1:
            raise self.refuse(token, "replayed", "the signing authorization has been used already", identity_id)
        seq = self.audit.append("scal2.authorized", actor=token.user_id, tenant_id=token.tenant_id,
                                subject=identity_id, details=details)
        return f"scal2:{seq}:{token.token_hash[:16]}"
