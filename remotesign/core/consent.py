"""The OAuth2 authorization-code flow's core: an authorization request becomes, after the user's
login and consent (PIN, or approval on their device), a single-use code; the code becomes a token
bound to what was consented to (identity, digests summary).

Checks follow RFC 6749 §4.1 and §10, RFC 7636 (PKCE) and the OAuth 2.0 Security BCP: redirect URIs
match a registered one exactly, errors about the client or the redirect URI are never redirected,
PKCE with S256 is required (``plain`` never; the operator may relax PKCE for one legacy client),
codes live ``auth_code_ttl`` seconds and a replayed code revokes the tokens issued from it.
Failed passwords and PINs count against the client and the browser's address (``core.throttle``)
as well as against the account.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol
from datetime import datetime, timedelta, timezone
from urllib.parse import urlencode, urlsplit, urlunsplit

from sqlalchemy import delete, select, update

from remotesign.storage.audit import AuditLog
from remotesign.core.devices import DeviceService
from remotesign.core.errors import CoreError
from remotesign.core import one_time_passwords as otp_codes
from remotesign.core.identities import IdentityError, IdentityInfo, IdentityService, PinRefused, Viewer
from remotesign.core.one_time_passwords import OtpError, OtpSender
from remotesign.core.processes import ProcessService
from remotesign.core.scopes import IDENTITY_PROFILE, USE_DEVICE, USE_SERVER, describe_user_scope, is_user_scope
from remotesign.core.sole_control import SUMMARY_ALGORITHMS, parse_digest_types, summary_algorithm
from remotesign.core.tenants import IssuedToken, TenantInfo, TenantService
from remotesign.core.throttle import AttemptThrottle
from remotesign.core.users import LoginFailed, UserInfo, UserService
from remotesign.storage.db import Database
from remotesign.storage.models import AuthorizationCode, AuthorizationRequest
from remotesign.storage.times import aware as _aware

FACTORS = ("pin", "pin-or-otp", "pin+otp")
_PKCE_CHARS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


class ConsentError(Exception):
    """``redirect``: the error goes back to the client's redirect URI (RFC 6749 §4.1.2.1);
    otherwise it is shown to the user (unknown client, bad redirect URI, expired page...)."""

    def __init__(self, code: str, message: str, *, redirect_to: str | None = None, state: str | None = None,
                 reason: str | None = None, values: Mapping[str, object] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason or code  # which message, for the pages' translations (core.errors)
        self.values = dict(values or {})
        self.redirect_to = redirect_to
        self.state = state

    def redirect_url(self) -> str | None:
        if self.redirect_to is None:
            return None
        return add_query(self.redirect_to, {"error": self.code, "error_description": self.message,
                                            **({"state": self.state} if self.state is not None else {})})


class GrantError(Exception):
    """Token-endpoint error (RFC 6749 §5.2)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def add_query(uri: str, params: dict[str, str]) -> str:
    parts = urlsplit(uri)
    query = (parts.query + "&" if parts.query else "") + urlencode(params)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()



def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class PendingConsent:
    """What the login / consent page needs to know about an authorization request."""

    id: str
    client: TenantInfo
    status: str
    scopes: tuple[str, ...]
    user: UserInfo | None
    identity: IdentityInfo | None
    candidates: tuple[IdentityInfo, ...]
    digests_summary: str | None
    digests_summary_algorithm: str | None
    digest_types: tuple[str, ...] | None
    documents: tuple[str, ...]
    has_device: bool
    redirect_uri: str
    state: str | None
    process_id: str | None
    login_hint: str | None = None
    signature_request_id: str | None = None
    factors: str = "pin"
    otp_sent_to: str | None = None

    @property
    def needs_pin(self) -> bool:
        """The approval asks for more than the login (the PIN, required or as one of two ways): a
        server signature always does; a request with other ``factors`` than ``pin`` does even
        without one (a Fortress-style login wants a second factor)."""
        return USE_SERVER in self.scopes or self.factors != "pin"

    @property
    def pin_required(self) -> bool:
        return self.needs_pin and self.factors != "pin-or-otp"

    @property
    def offers_otp(self) -> bool:
        return self.needs_pin and self.factors in ("pin-or-otp", "pin+otp")

    def scope_descriptions(self) -> list[str]:
        return [describe_user_scope(s) for s in self.scopes]


class SignatureRequestHooks(Protocol):
    """What a consent given for a signature request (core/signature_requests.py) tells it."""

    def consented(self, request_id: str, tenant_id: str, user_id: str, identity_id: str) -> None: ...

    def denied(self, request_id: str, tenant_id: str, reason: str) -> None: ...

    def candidates(self, request_id: str, tenant_id: str) -> tuple[str, ...]: ...

    def document_names(self, request_id: str, tenant_id: str) -> tuple[str, ...]: ...


class ConsentService:
    def __init__(self, db: Database, audit: AuditLog, tenants: TenantService, users: UserService,
                 identities: IdentityService, devices: DeviceService, processes: ProcessService, *,
                 request_ttl: int, code_ttl: int, token_ttl: int, signing_token_ttl: int, allow_sha1: bool,
                 documents_for_summary: object = None, throttle: AttemptThrottle | None = None,
                 signature_requests: SignatureRequestHooks | None = None, otp: OtpSender | None = None) -> None:
        self.db = db
        self.audit = audit
        self.tenants = tenants
        self.users = users
        self.identities = identities
        self.devices = devices
        self.processes = processes
        self.request_ttl = request_ttl
        self.code_ttl = code_ttl
        self.token_ttl = token_ttl
        self.signing_token_ttl = signing_token_ttl
        self.allow_sha1 = allow_sha1
        self.documents_for_summary = documents_for_summary
        self.throttle = throttle
        self.signature_requests = signature_requests
        self.otp = otp

    # -- 1. the authorization request --------------------------------------------------------------
    def start(self, auth_server: str, params: dict[str, str], *, login_hint: str | None = None,
              signature_request_id: str | None = None, extra_redirect_uri: str | None = None,
              pkce_optional: bool = False, factors: str = "pin",
              document_labels: tuple[str, ...] = ()) -> tuple[str, str]:
        """Validate an authorization request; returns (request id, browser secret for the cookie).

        ``login_hint``: only this user may log in. ``signature_request_id``: the consent authorizes
        that signature request (which gets the signing credential; the code does not).
        ``extra_redirect_uri``: a redirect URI the client gave, authenticated, for this very
        request. ``pkce_optional``: for a facade whose clients authenticate at the token endpoint
        and whose wire API has no PKCE. ``factors``: what approves a server signature: the PIN
        (``pin``), the PIN or a one-time password sent to the user (``pin-or-otp``), or both
        (``pin+otp``). ``document_labels``: the names the client gives the digests' documents."""
        if factors not in FACTORS:
            raise ValueError(f"factors is one of {', '.join(FACTORS)}")
        client_id = params.get("client_id") or ""
        client = self.tenants.by_client_id(client_id) if 0 < len(client_id) <= 200 else None
        if client is None or not client.enabled:
            raise ConsentError("invalid_client", "unknown or disabled client_id")
        redirect_uri = params.get("redirect_uri")
        if redirect_uri is None and len(client.redirect_uris) == 1:
            redirect_uri = client.redirect_uris[0]
        if not redirect_uri or (redirect_uri not in client.redirect_uris and redirect_uri != extra_redirect_uri):
            raise ConsentError("invalid_redirect_uri", "redirect_uri is not registered for this client")
        state = params.get("state")
        if state is not None and len(state) > 1000:
            raise ConsentError("invalid_request", "state is too long")

        def bad(code: str, message: str) -> ConsentError:
            return ConsentError(code, message, redirect_to=redirect_uri, state=state)

        if params.get("response_type") != "code":
            raise bad("unsupported_response_type", "only response_type=code is supported")
        scopes = tuple(dict.fromkeys(s for s in (params.get("scope") or "").split() if s))
        if not scopes:
            raise bad("invalid_scope", "scope is required")
        unknown = [s for s in scopes if not is_user_scope(s)]
        if unknown:
            raise bad("invalid_scope", f"unknown scope(s): {' '.join(unknown)[:200]}")
        challenge, method = params.get("code_challenge"), params.get("code_challenge_method")
        if challenge is not None:
            if method != "S256":
                raise bad("invalid_request", "code_challenge_method must be S256 (plain is not accepted)")
            if not (43 <= len(challenge) <= 128) or not set(challenge) <= _PKCE_CHARS:
                raise bad("invalid_request", "code_challenge must have 43-128 unreserved characters")
        elif method is not None:
            raise bad("invalid_request", "code_challenge_method without code_challenge")
        elif client.pkce_required and not pkce_optional:
            raise bad("invalid_request", "PKCE is required: send code_challenge with code_challenge_method=S256")
        identity_id = params.get("sign_identity_id") or None
        summary, summary_alg = params.get("digests_summary") or None, params.get("digests_summary_algorithm") or None
        binds = USE_SERVER in scopes or (USE_DEVICE in scopes and summary is not None)
        if binds:
            # use:server always signs given digests; use:device may name them too (eParaksts eID
            # Scan): the token is then spent on exactly those digests, once, like a server signature.
            if not summary:
                raise bad("invalid_request", f"scope {USE_SERVER} needs digests_summary")
            summary_alg = summary_alg or "SHA256"
            try:
                name = summary_algorithm(summary_alg, allow_sha1=self.allow_sha1)
                raw = base64.b64decode(summary, validate=True)
            except ValueError as exc:
                raise bad("invalid_request", f"digests_summary: {exc}") from exc
            if len(raw) != hashlib.new(name).digest_size:
                raise bad("invalid_request", f"digests_summary is not a {summary_alg} value")
            summary_alg = next(k for k, v in SUMMARY_ALGORITHMS.items() if v == name)
            try:
                digest_types = parse_digest_types(params.get("digests_algorithms"), allow_sha1=self.allow_sha1)
            except ValueError as exc:
                raise bad("invalid_request", f"digests_algorithms: {exc}") from exc
        elif summary:
            raise bad("invalid_request", f"digests_summary goes with scope {USE_SERVER} or {USE_DEVICE}")
        else:
            digest_types = None
        if digest_types is None and params.get("digests_algorithms"):
            raise bad("invalid_request", "digests_algorithms goes with digests_summary")
        if identity_id is not None and len(identity_id) > 36:
            raise bad("invalid_request", "sign_identity_id is malformed")
        request_id, secret = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        now = _now()
        with self.db.session() as s:
            s.add(AuthorizationRequest(
                id=request_id, browser_hash=_hash(secret), tenant_id=client.id, auth_server=auth_server,
                redirect_uri=redirect_uri, state=state, scope=" ".join(scopes), sign_identity_id=identity_id,
                digests_summary=summary, digests_summary_algorithm=summary_alg,
                digest_types=" ".join(digest_types) if digest_types else None, code_challenge=challenge,
                code_challenge_method=method if challenge else None, status="login", created_at=now,
                expires_at=now + timedelta(seconds=self.request_ttl), login_hint=login_hint,
                signature_request_id=signature_request_id, factors=factors,
                document_labels=json.dumps([label[:200] for label in document_labels[:100]]) if document_labels
                else None))
            s.execute(delete(AuthorizationRequest).where(AuthorizationRequest.expires_at < now - timedelta(hours=1)))
        return request_id, secret

    def _load(self, request_id: str, secret: str, *statuses: str) -> AuthorizationRequest:
        with self.db.session() as s:
            r = s.get(AuthorizationRequest, request_id) if 0 < len(request_id) <= 64 else None
            if r is not None:
                s.expunge(r)
        if r is None or not hmac.compare_digest(r.browser_hash, _hash(secret or "")):
            raise ConsentError("invalid_request", "this sign-in page is unknown or was opened in another browser",
                               reason="page_unknown")
        if _aware(r.expires_at) <= _now():
            raise ConsentError("expired", "this sign-in page has expired; start again from the application", reason="page_expired",
                               redirect_to=r.redirect_uri, state=r.state)
        if statuses and r.status not in statuses:
            raise ConsentError("invalid_request", "this step is already done; start again from the application",
                               reason="step_done")
        return r

    def _set(self, request_id: str, **values: object) -> None:
        with self.db.session() as s:
            s.execute(update(AuthorizationRequest).where(AuthorizationRequest.id == request_id).values(**values))

    def view(self, request_id: str, secret: str) -> PendingConsent:
        r = self._load(request_id, secret)
        client = self.tenants.by_client_id_or_id(r.tenant_id)
        user = self.users.get(r.user_id, None) if r.user_id else None
        identity, candidates = None, ()
        if user is not None:
            viewer = Viewer(r.tenant_id, user.id)
            if r.sign_identity_id:
                try:
                    identity = self.identities.get(r.sign_identity_id, viewer)
                except IdentityError:
                    identity = None  # deleted meanwhile: the page can still be canceled
            else:
                # Authentication identities (keyUsage digitalSignature only) are not offered for signing.
                candidates = tuple(i for i in self.identities.list(viewer) if i.status == "enabled"
                                   and "x509:keyUsage:digitalSignature" not in i.labels)
                if r.signature_request_id and self.signature_requests is not None:
                    offered = self.signature_requests.candidates(r.signature_request_id, r.tenant_id)
                    candidates = tuple(i for i in candidates if i.id in offered)
        docs: tuple[str, ...] = ()
        if r.signature_request_id and self.signature_requests is not None:
            docs = self.signature_requests.document_names(r.signature_request_id, r.tenant_id)
        elif r.digests_summary and callable(self.documents_for_summary):
            docs = tuple(name for _sid, name in self.documents_for_summary(r.tenant_id, r.digests_summary))
        if not docs and r.document_labels:
            docs = tuple(json.loads(r.document_labels))
        return PendingConsent(id=r.id, client=client, status=r.status, scopes=tuple(r.scope.split()), user=user,
                              identity=identity, candidates=candidates, digests_summary=r.digests_summary,
                              digests_summary_algorithm=r.digests_summary_algorithm,
                              digest_types=tuple(r.digest_types.split()) if r.digest_types else None, documents=docs,
                              has_device=user is not None and self.devices.has_device(user.id),
                              redirect_uri=r.redirect_uri, state=r.state, process_id=r.process_id,
                              login_hint=r.login_hint, signature_request_id=r.signature_request_id,
                              factors=r.factors or "pin", otp_sent_to=r.otp_sent_to)

    # -- 2. login ----------------------------------------------------------------------------------
    def _sources(self, r: AuthorizationRequest, address: str | None) -> list[str]:
        return [f"client:{r.tenant_id}"] + ([f"address:{address}"] if address else [])

    def login(self, request_id: str, secret: str, username: str, password: str, *,
              address: str | None = None) -> PendingConsent:
        """Password login; Throttled or LoginFailed (one answer for every reason) propagate."""
        r = self._load(request_id, secret, "login")
        sources = self._sources(r, address)
        if self.throttle is not None:
            self.throttle.check(sources)
        try:
            if r.login_hint is not None and username != r.login_hint:
                raise LoginFailed("not_the_requested_user")
            user = self.users.authenticate(username, password, r.tenant_id)
        except LoginFailed:
            if self.throttle is not None:
                self.throttle.failed(sources)
            raise
        if r.sign_identity_id:
            try:
                identity = self.identities.get(r.sign_identity_id, Viewer(r.tenant_id, user.id))
            except IdentityError:
                self.audit.append("consent.refused", actor=user.id, tenant_id=r.tenant_id, subject=r.sign_identity_id,
                                  details={"reason": "identity_not_owned"})
                raise ConsentError("access_denied", "the requested sign identity is not yours",
                                   redirect_to=r.redirect_uri, state=r.state) from None
            if identity.status != "enabled":
                raise ConsentError("access_denied", "the requested sign identity is disabled",
                                   redirect_to=r.redirect_uri, state=r.state)
        self._set(request_id, user_id=user.id, status="consent")
        return self.view(request_id, secret)

    # -- 3. consent ----------------------------------------------------------------------------------
    def _chosen_identity(self, r: AuthorizationRequest, chosen: str | None) -> IdentityInfo | None:
        needs = USE_SERVER in r.scope.split() or bool(r.digests_summary)
        identity_id = r.sign_identity_id or chosen
        if not identity_id:
            if needs:
                raise ConsentError("invalid_request", "choose the sign identity to sign with", reason="choose_identity")
            return None
        try:
            return self.identities.get(identity_id, Viewer(r.tenant_id, r.user_id))
        except IdentityError:
            raise ConsentError("invalid_request", "unknown sign identity", reason="unknown_identity") from None

    def approve_with_pin(self, request_id: str, secret: str, pin: str | None, chosen_identity: str | None, *,
                         address: str | None = None, otp: str | None = None) -> str:
        """Consent with the PIN (always needed when a server signature is authorized, unless the
        request takes a one-time password instead, or wants both); returns the redirect URL
        carrying the code. PinRefused, OtpError and Throttled propagate (the page shows why)."""
        r = self._load(request_id, secret, "consent")
        identity = self._chosen_identity(r, chosen_identity)
        signs, factors = USE_SERVER in r.scope.split(), r.factors or "pin"
        if signs or factors != "pin":
            assert r.user_id is not None
            if signs:
                assert identity is not None
                self.identities.check_usable(identity)
            sources = self._sources(r, address)
            if self.throttle is not None:
                self.throttle.check(sources)
            use_otp = factors == "pin+otp" or (factors == "pin-or-otp" and bool(otp) and not pin)
            try:
                if use_otp:
                    self._check_otp(r, otp or "", sources)
                if factors != "pin-or-otp" or not use_otp:
                    pin_identity = identity if signs else self._pin_identity(r)
                    self.identities.verify_pin(pin_identity.id, pin or "", actor=r.user_id, tenant_id=r.tenant_id)
            except PinRefused:
                if self.throttle is not None:
                    self.throttle.failed(sources)
                raise
        return self._issue_code(r, identity)

    def _pin_identity(self, r: AuthorizationRequest) -> IdentityInfo:
        """Whose PIN a login without a signature checks: the user's first enabled identity that
        has one (a user's identities share the PIN the user chose at activation)."""
        for i in self.identities.list(Viewer(r.tenant_id, r.user_id), user_id=r.user_id):
            if i.status == "enabled" and i.has_pin:
                return i
        raise ConsentError("invalid_request", "you have no signing PIN; ask for a one-time code instead", reason="no_pin")

    # -- one-time passwords ------------------------------------------------------------------------
    def send_otp(self, request_id: str, secret: str) -> PendingConsent:
        """Send the signed-in user a one-time password for this consent (a new one replaces the old)."""
        r = self._load(request_id, secret, "consent")
        if (r.factors or "pin") == "pin":
            raise OtpError("invalid_request", "this request is approved with the PIN", reason="otp_not_asked")
        if self.otp is None:
            raise OtpError("no_otp_channel", "this service cannot send one-time codes", 409)
        now = _now()
        if r.otp_sends >= otp_codes.MAX_SENDS:
            raise OtpError("otp_limit", "too many codes were sent for this request; start again from the application",
                           429, reason="otp_too_many_for_request")
        if r.otp_sent_at is not None and _aware(r.otp_sent_at) > now - timedelta(seconds=otp_codes.RESEND_SECONDS):
            raise OtpError("otp_limit", f"wait {otp_codes.RESEND_SECONDS} seconds before asking for another code", 429,
                           reason="otp_wait", values={"seconds": otp_codes.RESEND_SECONDS})
        user = self.users.get(r.user_id or "", r.tenant_id)
        code = otp_codes.new_code()
        client = self.tenants.by_client_id_or_id(r.tenant_id)
        sent_to = self.otp.send(user, code, f"approve a signature for {client.name}")
        self._set(request_id, otp_hash=otp_codes.code_hash(r.id, code), otp_failures=0, otp_sends=r.otp_sends + 1,
                  otp_sent_at=now, otp_sent_to=sent_to,
                  otp_expires_at=now + timedelta(seconds=otp_codes.TTL_SECONDS))
        self.audit.append("consent.otp_sent", actor=user.id, tenant_id=r.tenant_id, subject=r.id,
                          details={"to": sent_to})
        return self.view(request_id, secret)

    def _check_otp(self, r: AuthorizationRequest, code: str, sources: list[str]) -> None:
        """The request's current code, unexpired, within its tries; spent by this use either way."""
        now = _now()
        ar = AuthorizationRequest
        with self.db.session() as s:  # one write: concurrent tries are counted and a code is spent once
            s.execute(update(ar).where(ar.id == r.id).values(otp_failures=ar.otp_failures + 1))
            otp_hash, expires, failures = s.execute(select(ar.otp_hash, ar.otp_expires_at, ar.otp_failures)
                                                    .where(ar.id == r.id)).one()
            fresh = otp_hash is not None and expires is not None and _aware(expires) > now
            if fresh and failures <= otp_codes.MAX_FAILURES and otp_codes.matches(otp_hash, r.id, code.strip()):
                s.execute(update(ar).where(ar.id == r.id).values(otp_hash=None, otp_failures=0))
                return
            void = not fresh or failures >= otp_codes.MAX_FAILURES
            if void:
                s.execute(update(ar).where(ar.id == r.id).values(otp_hash=None))
        if self.throttle is not None:
            self.throttle.failed(sources)
        self.audit.append("consent.otp_refused", actor=r.user_id or "", tenant_id=r.tenant_id, subject=r.id,
                          details={"failures": failures, "expired": not fresh})
        if void:
            raise OtpError("otp_invalid", "the one-time code is wrong, expired or used up; ask for a new one", 403,
                           reason="otp_void")
        left = otp_codes.MAX_FAILURES - failures
        raise OtpError("otp_invalid", f"wrong one-time code, {left} {'try' if left == 1 else 'tries'} left", 403,
                       reason="otp_wrong_one" if left == 1 else "otp_wrong", values={"left": left})

    def request_device_approval(self, request_id: str, secret: str, chosen_identity: str | None) -> PendingConsent:
        r = self._load(request_id, secret, "consent")
        identity = self._chosen_identity(r, chosen_identity)
        if identity is None:
            raise ConsentError("invalid_request", "choose the sign identity to approve on your device",
                               reason="choose_identity")
        self.identities.check_usable(identity)
        client = self.tenants.by_client_id_or_id(r.tenant_id)
        if r.digests_summary and r.digests_summary_algorithm:
            digest = base64.b64decode(r.digests_summary)
            alg = SUMMARY_ALGORITHMS[r.digests_summary_algorithm]
        else:
            alg = "sha256"
            digest = hashlib.sha256(f"consent:{r.id}".encode()).digest()
        html = f"{client.name} asks to " + "; ".join(describe_user_scope(s) for s in r.scope.split())
        process = self.processes.create_authorization(r.tenant_id, identity, digest, alg, html)
        self._set(request_id, status="device", process_id=process.id, sign_identity_id=identity.id)
        return self.view(request_id, secret)

    def device_outcome(self, request_id: str, secret: str) -> str | None:
        """While waiting for the device: the redirect URL once it answered, else None."""
        r = self._load(request_id, secret, "device")
        process = self.processes.authorization_state(r.process_id or "")
        if process is None or process.status == "pending":
            if process is not None and process.expires_at <= _now():
                return self._deny(r, "the approval on the device timed out")
            return None
        if process.status == "finished":
            identity = self.identities.get(process.sign_identity_id, Viewer(r.tenant_id, r.user_id))
            return self._issue_code(r, identity)
        return self._deny(r, "the user rejected the request on the device")

    def cancel(self, request_id: str, secret: str) -> str:
        r = self._load(request_id, secret, "login", "consent", "device")
        return self._deny(r, "the user canceled")

    def _deny(self, r: AuthorizationRequest, why: str) -> str:
        self._set(r.id, status="denied")
        if r.signature_request_id and self.signature_requests is not None:
            self.signature_requests.denied(r.signature_request_id, r.tenant_id, why)
        if r.process_id:  # the device must not keep showing a request nobody waits for
            self.processes.withdraw(r.process_id, why, actor=r.user_id or "anonymous")
        self.audit.append("consent.denied", actor=r.user_id or "anonymous", tenant_id=r.tenant_id, subject=r.id,
                          details={"reason": why})
        return ConsentError("access_denied", why, redirect_to=r.redirect_uri, state=r.state).redirect_url() or ""

    def _issue_code(self, r: AuthorizationRequest, identity: IdentityInfo | None) -> str:
        code = secrets.token_urlsafe(32)
        scope, summary, summary_alg, types = r.scope, r.digests_summary, r.digests_summary_algorithm, r.digest_types
        for_request = r.signature_request_id if self.signature_requests is not None else None
        if for_request:
            # The signature request itself gets the credential; the code only identifies the user.
            if identity is None or r.user_id is None:
                raise ConsentError("invalid_request", "choose the sign identity to sign with", reason="choose_identity")
            scope = " ".join(x for x in scope.split() if x != USE_SERVER) or IDENTITY_PROFILE
            summary = summary_alg = types = None
        with self.db.session() as s:
            done = s.execute(update(AuthorizationRequest)
                             .where(AuthorizationRequest.id == r.id, AuthorizationRequest.status.in_(("consent", "device")))
                             .values(status="done")).rowcount
            if done != 1:
                raise ConsentError("invalid_request", "this consent was already given", reason="step_done")
            s.add(AuthorizationCode(
                code_hash=_hash(code), tenant_id=r.tenant_id, auth_server=r.auth_server, user_id=r.user_id or "",
                redirect_uri=r.redirect_uri, scope=scope, sign_identity_id=identity.id if identity else None,
                digests_summary=summary, digests_summary_algorithm=summary_alg, digest_types=types,
                code_challenge=r.code_challenge, code_challenge_method=r.code_challenge_method,
                expires_at=_now() + timedelta(seconds=self.code_ttl)))
        if for_request:
            assert self.signature_requests is not None and identity is not None and r.user_id is not None
            try:
                self.signature_requests.consented(for_request, r.tenant_id, r.user_id, identity.id)
            except CoreError as exc:
                raise ConsentError(exc.code, exc.message, redirect_to=r.redirect_uri, state=r.state) from exc
        self.audit.append("consent.given", actor=r.user_id or "", tenant_id=r.tenant_id,
                          subject=identity.id if identity else "",
                          details={"scope": r.scope, "digests_summary": r.digests_summary,
                                   "via": "device" if r.status == "device" else "pin"})
        return add_query(r.redirect_uri, {"code": code, **({"state": r.state} if r.state is not None else {})})

    # -- 4. the token endpoint -----------------------------------------------------------------------
    def exchange(self, client: TenantInfo, auth_server: str, code: str, redirect_uri: str | None,
                 code_verifier: str | None) -> IssuedToken:
        if not code or len(code) > 200:
            raise GrantError("invalid_request", "code is required")
        code_hash = _hash(code)
        now = _now()
        with self.db.session() as s:
            c = s.get(AuthorizationCode, code_hash)
            if c is not None:
                s.expunge(c)
        if c is None:
            raise GrantError("invalid_grant", "unknown authorization code")
        # Everything that proves the caller is the code's rightful client is checked before the
        # code is spent, so nobody else can burn it (or revoke its tokens by a fake replay).
        if c.tenant_id != client.id or c.auth_server != auth_server:
            raise GrantError("invalid_grant", "the authorization code was issued to another client")
        # RFC 6749 §4.1.3 wants redirect_uri again; eParaksts' Laravel client omits it. The code is
        # bound to its client (authenticated here) and to a registered, exactly matched redirect URI,
        # so an absent value is accepted; a different one never is.
        if redirect_uri is not None and redirect_uri != c.redirect_uri:
            raise GrantError("invalid_grant", "redirect_uri differs from the authorization request")
        if c.code_challenge is not None:
            if not code_verifier or not (43 <= len(code_verifier) <= 128) or not set(code_verifier) <= _PKCE_CHARS:
                raise GrantError("invalid_grant", "code_verifier is missing or malformed")
            computed = code_verifier if c.code_challenge_method == "plain" else \
                base64.urlsafe_b64encode(hashlib.sha256(code_verifier.encode()).digest()).rstrip(b"=").decode()
            if not hmac.compare_digest(computed, c.code_challenge):
                raise GrantError("invalid_grant", "code_verifier does not match the code_challenge")
        elif code_verifier:
            raise GrantError("invalid_grant", "code_verifier given but the request had no code_challenge")
        with self.db.session() as s:
            spent = s.execute(update(AuthorizationCode).where(AuthorizationCode.code_hash == code_hash,
                                                              AuthorizationCode.used_at.is_(None))
                              .values(used_at=now)).rowcount
        if spent != 1:
            revoked = self.tenants.revoke_code_tokens(code_hash)
            self.audit.append("consent.code_replayed", actor=client.client_id, tenant_id=c.tenant_id,
                              subject=c.user_id, details={"tokens_revoked": revoked})
            raise GrantError("invalid_grant", "the authorization code was used already")
        if _aware(c.expires_at) <= now:
            raise GrantError("invalid_grant", "the authorization code has expired")
        signing = USE_SERVER in c.scope.split() or (USE_DEVICE in c.scope.split() and bool(c.digests_summary))
        return self.tenants.issue_user_token(
            c.tenant_id, auth_server, c.scope, user_id=c.user_id,
            ttl=self.signing_token_ttl if signing else self.token_ttl, sign_identity_id=c.sign_identity_id,
            digests_summary=c.digests_summary if signing else None,
            digests_summary_algorithm=c.digests_summary_algorithm if signing else None, code_hash=code_hash,
            digest_types=c.digest_types if signing else None)


__all__ = ["ConsentError", "ConsentService", "GrantError", "PendingConsent", "PinRefused", "IDENTITY_PROFILE",
           "USE_DEVICE"]
