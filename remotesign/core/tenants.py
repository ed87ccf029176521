"""Relying parties (tenants): OAuth2 clients with client-credentials tokens.

Client secrets are random 256-bit values, so a salted HMAC-SHA256 is enough to store them (no slow
password hash needed: there is nothing to brute-force). Access tokens are opaque random strings
stored only as their SHA-256.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import bindparam, delete, or_, select, update

from remotesign.storage.audit import AuditLog
from remotesign.core.scopes import KNOWN_SCOPES
from remotesign.storage.db import Database
from remotesign.storage.models import AccessToken, Tenant
from remotesign.storage.times import aware as _aware


class TenantError(ValueError):
    pass


class InvalidClient(TenantError):
    """Unknown client, wrong secret or disabled client (one error: do not tell which)."""


class InvalidScope(TenantError):
    pass


@dataclass(frozen=True)
class TenantInfo:
    id: str
    name: str
    client_id: str
    allowed_scopes: tuple[str, ...]
    enabled: bool
    created_at: datetime
    redirect_uris: tuple[str, ...] = ()
    pkce_required: bool = True
    allowed_networks: tuple[str, ...] = ()  # CIDRs the client may call from; empty = anywhere
    counter_signer_key: str | None = None  # the client's own key that counter-signs, if chosen

    def allows_address(self, address: str | None) -> bool:
        """May the client call from ``address``? (No list: yes; a list and no address: no.)"""
        if not self.allowed_networks:
            return True
        try:
            ip = ipaddress.ip_address(address or "")
        except ValueError:
            return False
        return any(ip in ipaddress.ip_network(n, strict=False) for n in self.allowed_networks)


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    expires_in: int
    scope: str


@dataclass(frozen=True)
class TokenInfo:
    """What a valid bearer token stands for: the caller of every tenant-scoped operation."""

    tenant_id: str
    client_id: str
    auth_server: str
    scopes: frozenset[str]
    issued_at: datetime
    expires_at: datetime
    user_id: str | None = None                  # set for authorization-code tokens
    sign_identity_id: str | None = None         # SCAL2 binding of a signing token ...
    digests_summary: str | None = None          # ... to exactly these digests
    digests_summary_algorithm: str | None = None
    digest_types: tuple[str, ...] | None = None  # hashlib names of the digests, in order, when declared
    token_hash: str = ""                        # to spend a signing token exactly once

    @property
    def is_user_token(self) -> bool:
        return self.user_id is not None


def _info(t: Tenant) -> TenantInfo:
    return TenantInfo(id=t.id, name=t.name, client_id=t.client_id,
                      allowed_scopes=tuple(s for s in t.allowed_scopes.split() if s), enabled=t.enabled,
                      created_at=t.created_at, redirect_uris=tuple(u for u in (t.redirect_uris or "").split() if u),
                      pkce_required=t.pkce_required is not False,
                      allowed_networks=tuple(n for n in (t.allowed_networks or "").split() if n),
                      counter_signer_key=t.counter_signer_key)


def _hash_secret(secret: str, salt: str) -> str:
    return salt + "$" + hmac.new(salt.encode(), secret.encode(), hashlib.sha256).hexdigest()


def _check_secret(secret: str, stored: str) -> bool:
    salt, _, _ = stored.partition("$")
    return hmac.compare_digest(_hash_secret(secret, salt), stored)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def hash_of(token: str) -> str:
    """How the service stores a bearer token: its SHA-256, hex."""
    return _token_hash(token)



# every authenticated request runs this: a Core statement built once, columns only
_RESOLVE = (select(AccessToken.token_hash, AccessToken.tenant_id, AccessToken.auth_server, AccessToken.scope,
                   AccessToken.issued_at, AccessToken.expires_at, AccessToken.user_id, AccessToken.sign_identity_id,
                   AccessToken.digests_summary, AccessToken.digests_summary_algorithm, AccessToken.digest_types,
                   Tenant.client_id, Tenant.enabled)
            .join(Tenant, Tenant.id == AccessToken.tenant_id)
            .where(AccessToken.token_hash == bindparam("token_hash")))


class TenantService:
    def __init__(self, db: Database, audit: AuditLog, token_ttl_seconds: int = 3600) -> None:
        self.db = db
        self.audit = audit
        self.token_ttl = token_ttl_seconds

    def create(self, name: str, scopes: list[str] | None = None, client_id: str | None = None,
               client_secret: str | None = None, *, pkce_required: bool = False,
               actor: str = "operator") -> tuple[TenantInfo, str]:
        """New relying party; returns it with its client secret (shown once, stored only hashed).
        PKCE is optional by default (checked when sent, S256 only): the eParaksts client libraries
        are confidential clients that never send it; the operator requires it per client."""
        scopes = list(scopes) if scopes else list(KNOWN_SCOPES)
        unknown = [s for s in scopes if s not in KNOWN_SCOPES]
        if unknown:
            raise InvalidScope(f"unknown scope(s): {', '.join(unknown)}")
        secret = client_secret or secrets.token_urlsafe(32)
        tenant = Tenant(id=str(uuid.uuid4()), name=name, client_id=client_id or secrets.token_hex(16),
                        client_secret_hash=_hash_secret(secret, secrets.token_hex(8)),
                        allowed_scopes=" ".join(scopes), enabled=True, pkce_required=pkce_required,
                        created_at=datetime.now(timezone.utc))
        with self.db.session() as s:
            if s.scalar(select(Tenant).where(Tenant.client_id == tenant.client_id)) is not None:
                raise TenantError(f"client id {tenant.client_id!r} exists already")
            s.add(tenant)
        self.audit.append("client.created", actor=actor, tenant_id=tenant.id, subject=tenant.client_id,
                          details={"name": name, "scopes": scopes})
        return _info(tenant), secret

    def list(self) -> list[TenantInfo]:
        with self.db.session() as s:
            return [_info(t) for t in s.scalars(select(Tenant).order_by(Tenant.created_at))]

    def by_client_id(self, client_id: str) -> TenantInfo | None:
        with self.db.session() as s:
            t = s.scalar(select(Tenant).where(Tenant.client_id == client_id))
            return _info(t) if t else None

    def by_name(self, name: str) -> TenantInfo | None:
        """The enabled client of this name (a relying-party code), if exactly one has it."""
        with self.db.session() as s:
            found = s.scalars(select(Tenant).where(Tenant.name == name, Tenant.enabled.is_(True)).limit(2)).all()
            return _info(found[0]) if len(found) == 1 else None

    def is_registered_redirect(self, uri: str) -> bool:
        """``uri`` is, exactly, a redirect URI an enabled client registered."""
        if not uri or len(uri) > 2000:
            return False
        return any(t.enabled and uri in t.redirect_uris for t in self.list())

    def by_client_id_or_id(self, tenant_id: str) -> TenantInfo:
        with self.db.session() as s:
            t = s.get(Tenant, tenant_id) or s.scalar(select(Tenant).where(Tenant.client_id == tenant_id))
            if t is None:
                raise TenantError(f"no client {tenant_id!r}")
            return _info(t)

    def set_enabled(self, client_id: str, enabled: bool, actor: str = "operator") -> TenantInfo:
        with self.db.session() as s:
            t = s.scalar(select(Tenant).where(Tenant.client_id == client_id))
            if t is None:
                raise TenantError(f"no client {client_id!r}")
            t.enabled = enabled
            if not enabled:
                s.execute(delete(AccessToken).where(AccessToken.tenant_id == t.id))
            info = _info(t)
        self.audit.append("client.enabled" if enabled else "client.disabled", actor=actor,
                          tenant_id=info.id, subject=client_id)
        return info

    def rotate_secret(self, client_id: str, *, actor: str = "operator", revoke_tokens: bool = True) -> str:
        """A new client secret (returned once, stored only hashed): the old one stops
        authenticating at once. ``revoke_tokens`` also revokes every token issued to the client
        (what a leaked secret calls for)."""
        secret = secrets.token_urlsafe(32)
        with self.db.session() as s:
            t = s.scalar(select(Tenant).where(Tenant.client_id == client_id))
            if t is None:
                raise TenantError(f"no client {client_id!r}")
            t.client_secret_hash = _hash_secret(secret, secrets.token_hex(8))
            revoked = (s.execute(delete(AccessToken).where(AccessToken.tenant_id == t.id)).rowcount or 0
                       if revoke_tokens else 0)
            tenant_id = t.id
        self.audit.append("client.secret_rotated", actor=actor, tenant_id=tenant_id, subject=client_id,
                          details={"tokens_revoked": revoked})
        return secret

    def authenticate(self, client_id: str, client_secret: str) -> TenantInfo:
        with self.db.session() as s:
            t = s.scalar(select(Tenant).where(Tenant.client_id == client_id))
            if t is None:
                _check_secret(client_secret, _hash_secret("", "0" * 16))  # same work for unknown ids
                raise InvalidClient("client authentication failed")
            if not _check_secret(client_secret, t.client_secret_hash) or not t.enabled:
                raise InvalidClient("client authentication failed")
            return _info(t)

    def issue_token(self, tenant: TenantInfo, auth_server: str, requested: str | None) -> IssuedToken:
        """Client-credentials grant: the requested scopes must be allowed; none requested = all allowed."""
        wanted = [s for s in (requested or "").split(" ") if s]
        if not wanted:
            wanted = list(tenant.allowed_scopes)
        refused = [s for s in wanted if s not in tenant.allowed_scopes]
        if refused:
            raise InvalidScope(f"scope not allowed for this client: {' '.join(refused)}")
        token = secrets.token_urlsafe(32)
        now = datetime.now(timezone.utc)
        scope = " ".join(dict.fromkeys(wanted))
        with self.db.session() as s:
            s.add(AccessToken(token_hash=_token_hash(token), tenant_id=tenant.id, auth_server=auth_server,
                              scope=scope, issued_at=now, expires_at=now + timedelta(seconds=self.token_ttl)))
            s.execute(delete(AccessToken).where(AccessToken.expires_at < now - timedelta(days=1)))
        self.audit.append("token.issued", actor=tenant.client_id, tenant_id=tenant.id, subject=auth_server,
                          details={"scope": scope, "token_sha256_prefix": _token_hash(token)[:16]})
        return IssuedToken(access_token=token, expires_in=self.token_ttl, scope=scope)

    def resolve(self, token: str) -> TokenInfo | None:
        """The token's meaning if it is known, unexpired and its client enabled; else None."""
        return self._resolve(token, allow_expired=False)

    def resolve_expired(self, token: str) -> TokenInfo | None:
        """Like ``resolve`` but regardless of expiry: lets facades audit the use of an expired
        signing token as a sole-control refusal before answering invalid_token."""
        return self._resolve(token, allow_expired=True)

    def by_hash(self, token_hash: str) -> TokenInfo | None:
        """A token the service keeps a reference to (its hash) for work it does later on the
        user's behalf (a signature request executed after the consent), expired or not."""
        return self._resolve_hash(token_hash, allow_expired=True)

    def _resolve(self, token: str, *, allow_expired: bool) -> TokenInfo | None:
        if not token or len(token) > 512:
            return None
        return self._resolve_hash(_token_hash(token), allow_expired=allow_expired)

    def _resolve_hash(self, token_hash: str, *, allow_expired: bool) -> TokenInfo | None:
        with self.db.read() as conn:
            tok = conn.execute(_RESOLVE, {"token_hash": token_hash}).first()
        if tok is None:
            return None
        if not tok.enabled or (not allow_expired and _aware(tok.expires_at) <= datetime.now(timezone.utc)):
            return None
        return TokenInfo(tenant_id=tok.tenant_id, client_id=tok.client_id, auth_server=tok.auth_server,
                         scopes=frozenset(tok.scope.split()), issued_at=_aware(tok.issued_at),
                         expires_at=_aware(tok.expires_at), user_id=tok.user_id,
                         sign_identity_id=tok.sign_identity_id, digests_summary=tok.digests_summary,
                         digests_summary_algorithm=tok.digests_summary_algorithm, token_hash=tok.token_hash,
                         digest_types=tuple(tok.digest_types.split()) if tok.digest_types else None)

    def set_redirect_uris(self, client_id: str, uris: list[str], actor: str = "operator") -> TenantInfo:
        """Register the exact redirect URIs the authorization endpoint may send this client's users to."""
        for uri in uris:
            check_redirect_uri(uri)
        unique = list(dict.fromkeys(uris))
        return self._set(client_id, "client.redirect_uris", {"redirect_uris": unique}, actor,
                         redirect_uris=" ".join(unique))

    def _set(self, client_id: str, event: str, details: dict[str, object], actor: str,
             **values: object) -> TenantInfo:
        """Change the client's settings ``values`` and audit ``event``."""
        with self.db.session() as s:
            t = s.scalar(select(Tenant).where(Tenant.client_id == client_id))
            if t is None:
                raise TenantError(f"no client {client_id!r}")
            for name, value in values.items():
                setattr(t, name, value)
            info = _info(t)
        self.audit.append(event, actor=actor, tenant_id=info.id, subject=client_id, details=details)
        return info

    def callback_secret(self, tenant_id: str, *, rotate: bool = False, actor: str = "operator") -> bytes:
        """The key of the HMAC-SHA256 signature on the callbacks sent to this client (32 random
        bytes, made on first use; ``rotate`` replaces it, and the old one stops verifying)."""
        with self.db.session() as s:
            t = s.get(Tenant, tenant_id)
            if t is None:
                raise TenantError(f"no client {tenant_id!r}")
            if t.callback_secret and not rotate:
                return base64.b64decode(t.callback_secret)
            secret = secrets.token_bytes(32)
            made = s.execute(update(Tenant).where(Tenant.id == tenant_id, *(() if rotate else (
                or_(Tenant.callback_secret.is_(None), Tenant.callback_secret == ""),))).values(
                    callback_secret=base64.b64encode(secret).decode("ascii"))).rowcount
        if not made:  # another process (a worker of another node) made it first: that one holds
            with self.db.session() as s:
                stored = s.scalar(select(Tenant.callback_secret).where(Tenant.id == tenant_id))
            return base64.b64decode(stored)
        self.audit.append("client.callback_secret", actor=actor, tenant_id=tenant_id, subject=tenant_id,
                          details={"rotated": rotate})
        return secret

    def set_allowed_networks(self, client_id: str, networks: list[str], actor: str = "operator") -> TenantInfo:
        """The networks (CIDRs or addresses) the client may call from; an empty list lifts the limit."""
        clean = []
        for n in networks:
            try:
                clean.append(str(ipaddress.ip_network(n.strip(), strict=False)))
            except ValueError as exc:
                raise TenantError(f"{n!r} is not an IP network") from exc
        unique = list(dict.fromkeys(clean))
        return self._set(client_id, "client.allowed_networks", {"networks": unique}, actor,
                         allowed_networks=" ".join(unique))

    def set_counter_signer(self, client_id: str, key_id: str | None, actor: str = "operator") -> TenantInfo:
        """The client's own key that counter-signs its users' documents on request (None: none).
        The caller checks the key is the client's and certified."""
        return self._set(client_id, "client.counter_signer", {"key_id": key_id}, actor, counter_signer_key=key_id)

    def set_pkce_required(self, client_id: str, required: bool, actor: str = "operator") -> TenantInfo:
        """PKCE S256 is required by default; only the operator may relax it for a legacy client."""
        return self._set(client_id, "client.pkce", {"required": required}, actor, pkce_required=required)

    def issue_user_token(self, tenant_id: str, auth_server: str, scope: str, *, user_id: str, ttl: int,
                         sign_identity_id: str | None = None, digests_summary: str | None = None,
                         digests_summary_algorithm: str | None = None, code_hash: str | None = None,
                         digest_types: str | None = None, grant: str = "authorization_code") -> IssuedToken:
        """Authorization-code grant: a token acting for ``user_id``, bound to what they consented to.
        ``grant`` names how the service came to issue it, for the audit trail."""
        token = secrets.token_urlsafe(32)
        now = datetime.now(timezone.utc)
        with self.db.session() as s:
            s.add(AccessToken(token_hash=_token_hash(token), tenant_id=tenant_id, auth_server=auth_server,
                              scope=scope, issued_at=now, expires_at=now + timedelta(seconds=ttl), user_id=user_id,
                              sign_identity_id=sign_identity_id, digests_summary=digests_summary,
                              digests_summary_algorithm=digests_summary_algorithm, code_hash=code_hash,
                              digest_types=digest_types))
        self.audit.append("token.issued", actor=user_id, tenant_id=tenant_id, subject=auth_server,
                          details={"scope": scope, "grant": grant, "sign_identity_id": sign_identity_id,
                                   "digests_summary": digests_summary,
                                   "token_sha256_prefix": _token_hash(token)[:16]})
        return IssuedToken(access_token=token, expires_in=ttl, scope=scope)

    def revoke(self, token: str, tenant_id: str, *, user_id: str | None = None, actor: str) -> bool:
        """Revoke ``token`` if it was issued to ``tenant_id`` (and, given ``user_id``, acts for that
        user); anyone else's token is left alone, and the answer does not tell (RFC 7009 §2.2)."""
        if not token or len(token) > 512:
            return False
        token_hash = _token_hash(token)
        with self.db.session() as s:
            q = delete(AccessToken).where(AccessToken.token_hash == token_hash, AccessToken.tenant_id == tenant_id)
            if user_id is not None:
                q = q.where(AccessToken.user_id == user_id)
            gone = (s.execute(q).rowcount or 0) == 1
        if gone:
            self.audit.append("token.revoked", actor=actor, tenant_id=tenant_id, subject=user_id or "",
                              details={"token_sha256_prefix": token_hash[:16]})
        return gone

    def revoke_code_tokens(self, code_hash: str) -> int:
        """RFC 6749 §4.1.2: a replayed authorization code revokes the tokens issued from it."""
        with self.db.session() as s:
            return s.execute(delete(AccessToken).where(AccessToken.code_hash == code_hash)).rowcount or 0


def check_redirect_uri(uri: str) -> None:
    """Absolute http(s) URI without fragment (RFC 6749 §3.1.2); plain http only for loopback hosts."""
    from urllib.parse import urlsplit

    parts = urlsplit(uri)
    if parts.scheme not in ("https", "http") or not parts.netloc or parts.fragment or len(uri) > 2000:
        raise TenantError(f"redirect URI {uri!r} must be an absolute https URI without a fragment")
    if parts.scheme == "http" and parts.hostname not in ("localhost", "127.0.0.1", "::1"):
        raise TenantError(f"redirect URI {uri!r}: plain http is allowed only for loopback hosts")
