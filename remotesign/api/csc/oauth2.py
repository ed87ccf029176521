"""The CSC API's OAuth2 authorization server (``info.oauth2`` is ``{base}/csc/{v}``):
``oauth2/authorize`` on the service's own login and consent pages, ``oauth2/token``,
``oauth2/revoke`` and ``oauth2/pushed_authorize`` (RFC 9126, v2).

``scope=service`` gives a token for the user's credentials (list, info, explicit authorization).
``scope=credential`` — with ``credentialID``, ``numSignatures`` and the hashes (``hash`` in v1,
``hashes`` + ``hashAlgorithmOID`` in v2, comma-separated base64url), or ``authorization_details``
of type ``credential`` with ``documentDigests`` (RFC 9396) — shows the user what they authorize,
takes their PIN (and one-time code, as configured) and gives a token that signs exactly those
hashes with that credential, once (core/sole_control.py). PKCE S256 is required unless the
operator relaxed it for the client.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from remotesign.api.consent_pages import login_page, query_params, run_page
from remotesign.api.csc import wire
from remotesign.api.csc.answers import CscPushedAuthorization, CscToken
from remotesign.api.csc.calls import AUTH_SERVER, no_store
from remotesign.api.errors import OAuthError
from remotesign.api.oauth import authenticate_client, exchange_code
from remotesign.api.openapi_doc import form_body, text
from remotesign.core.consent import ConsentError
from remotesign.core.errors import CoreError
from remotesign.core.scopes import IDENTITY_PROFILE, USE_SERVER
from remotesign.core.tenants import TenantInfo
from remotesign.service import Services

router = APIRouter(tags=["csc"])

PASSED = ("response_type", "client_id", "redirect_uri", "state", "code_challenge", "code_challenge_method")
CSC_PARAMS = PASSED + ("scope", "credentialID", "numSignatures", "hash", "hashes", "hashAlgorithmOID",
                       "authorization_details", "description", "lang", "account_token", "clientData", "request_uri")
SUMMARY_NAMES = {"sha256": "SHA256", "sha384": "SHA384", "sha512": "SHA512"}


def _redirect_for(client: TenantInfo | None, query: dict[str, str]) -> str | None:
    uri = query.get("redirect_uri")
    if client is None:
        return None
    if uri is None and len(client.redirect_uris) == 1:
        return client.redirect_uris[0]
    return uri if uri in client.redirect_uris else None


def document_labels(query: dict[str, str]) -> tuple[str, ...]:
    """The ``label`` of each of ``authorization_details``' documentDigests (for the consent page)."""
    try:
        details = json.loads(query.get("authorization_details") or "[]")
    except ValueError:
        return ()
    details = [details] if isinstance(details, dict) else details if isinstance(details, list) else []
    return tuple(str(d.get("label"))[:200] for detail in details if isinstance(detail, dict)
                 for d in (detail.get("documentDigests") or []) if isinstance(d, dict) and d.get("label"))


def _credential_request(query: dict[str, str], version: str) -> tuple[str, list[bytes], str]:
    """(credential, hashes, hash name) of a credential-scope request, from its parameters or its
    ``authorization_details``."""
    if query.get("authorization_details"):
        try:
            details = json.loads(query["authorization_details"])
        except ValueError:
            raise wire.bad("authorization_details is not JSON") from None
        details = [details] if isinstance(details, dict) else details
        wanted = [d for d in details if isinstance(d, dict) and d.get("type") == "credential"] \
            if isinstance(details, list) else []
        if len(wanted) != 1:
            raise wire.bad("authorization_details names one authorization of type credential")
        detail = wanted[0]
        credential = detail.get("credentialID")
        digests = detail.get("documentDigests")
        if not isinstance(credential, str) or not isinstance(digests, list) or not digests or len(digests) > 100 \
                or not all(isinstance(d, dict) and isinstance(d.get("hash"), str) for d in digests):
            raise wire.bad("authorization_details needs credentialID and documentDigests [{hash, label}]")
        values = [wire.decode_b64(d["hash"]) for d in digests]
        oid = detail.get("hashAlgorithmOID")
        name = wire.hash_name(oid, "hashAlgorithmOID") if oid is not None else wire.hash_by_size(values)
        return credential, values, name
    credential = query.get("credentialID")
    if not credential:
        raise wire.bad("scope credential needs credentialID")
    raw = query.get("hashes" if version == "v2" and "hashes" in query else "hash")
    if not raw:
        raise wire.bad("scope credential needs the hashes to be signed (this service binds every authorization "
                       "to its hashes)")
    values = [wire.decode_b64(h) for h in raw.split(",") if h]
    if not 1 <= len(values) <= 100:
        raise wire.bad("1 to 100 hashes")
    count = query.get("numSignatures")
    if count is not None and (not count.isdigit() or int(count) != len(values)):
        raise wire.bad(f"numSignatures must be the number of hashes ({len(values)})")
    oid = query.get("hashAlgorithmOID")
    name = wire.hash_name(oid, "hashAlgorithmOID") if oid else wire.hash_by_size(values)
    return credential, values, name


def consent_parameters(query: dict[str, str], version: str) -> dict[str, str]:
    """The CSC authorization request as the core's consent flow takes it."""
    params = {k: query[k] for k in PASSED if k in query}
    scope = query.get("scope")
    if scope == "service" and not query.get("authorization_details"):
        params["scope"] = IDENTITY_PROFILE
        return params
    if scope not in ("credential", None) and not (scope or "").startswith("credential"):
        raise wire.bad(f"unknown scope {str(scope)[:40]!r} (use service or credential)", "invalid_scope")
    credential, values, name = _credential_request(query, version)
    if name not in SUMMARY_NAMES:
        raise wire.bad("the hashes are SHA-256, SHA-384 or SHA-512 values")
    if any(len(v) != hashlib.new(name).digest_size for v in values):
        raise wire.bad(f"a {name} hash has {hashlib.new(name).digest_size} bytes")
    summary = base64.b64encode(hashlib.new(name, b"".join(values)).digest()).decode()
    params |= {"scope": USE_SERVER, "sign_identity_id": credential, "digests_summary": summary,
               "digests_summary_algorithm": SUMMARY_NAMES[name],
               "digests_algorithms": ",".join([SUMMARY_NAMES[name]] * len(values))}
    return params


def _pushed(svc: Services, query: dict[str, str]) -> dict[str, str]:
    """The parameters a client pushed, for its ``request_uri`` (once, before it expires)."""
    client = svc.tenants.by_client_id(query.get("client_id") or "") if query.get("client_id") else None
    try:
        return svc.pushed_authorizations.redeem(query["request_uri"], client.id if client else None)
    except CoreError as exc:
        raise ConsentError(exc.code, exc.message) from None


@router.get("/csc/{version}/oauth2/authorize", response_class=HTMLResponse,
            summary="CSC oauth2/authorize: the user's login and consent, then redirect_uri with code")
async def authorize(version: str, request: Request) -> Response:
    svc: Services = request.app.state.services
    wire.check_version(version)

    def handle() -> Response:
        query = query_params(request)
        if query.get("request_uri"):
            query = _pushed(svc, query)
        client_id = query.get("client_id") or ""
        client = svc.tenants.by_client_id(client_id) if 0 < len(client_id) <= 200 else None
        if client is None or not client.enabled:
            raise ConsentError("invalid_client", "unknown or disabled client_id")
        try:
            params = consent_parameters(query, version)
        except OAuthError as exc:
            raise ConsentError(exc.code, exc.description, redirect_to=_redirect_for(client, query),
                               state=query.get("state")) from None
        # a service token is the user's login; a credential token also takes the signing factors
        factors = svc.signature_activation.factors if params["scope"] == USE_SERVER else "pin"
        return login_page(svc, request, AUTH_SERVER, params, ui_locales=query.get("lang"), factors=factors,
                          document_labels=document_labels(query))

    return await run_page(handle)


async def _params(request: Request) -> dict[str, str]:
    """Token-endpoint parameters: a form (RFC 6749) or, as CSC v1's examples send them, JSON."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    raw = await request.body()
    if ctype == "application/json":
        data = await wire.body(request)
        return {k: v if isinstance(v, str) else json.dumps(v) for k, v in data.items() if isinstance(k, str)}
    if ctype in ("application/x-www-form-urlencoded", ""):
        try:
            return dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=False, max_num_fields=50))
        except (UnicodeDecodeError, ValueError):
            raise wire.bad("unreadable form body") from None
    raise wire.bad("parameters are sent as application/x-www-form-urlencoded or application/json")


async def _client_call(request: Request, version: str,
                       work: Callable[[Services, Request, dict[str, str]], Response]) -> Response:
    """A client-authenticated OAuth2 endpoint: its parameters read here, the work (which
    authenticates the client: a slow secret check, database calls) in the thread pool."""
    svc: Services = request.app.state.services
    wire.check_version(version)
    params = await _params(request)
    return await run_in_threadpool(work, svc, request, params)


def _wire_scope(scope: str) -> str:
    return "credential" if USE_SERVER in scope.split() else "service"


def _token(svc: Services, request: Request, params: dict[str, str]) -> Response:
    grant = params.get("grant_type")
    if not grant:
        raise wire.bad("grant_type is required")
    tenant = authenticate_client(svc, request, params)
    if grant != "authorization_code":
        raise OAuthError(400, "unsupported_grant_type", f"grant_type {grant[:60]!r} is not supported")
    issued = exchange_code(svc, tenant, AUTH_SERVER, params)
    body: dict[str, Any] = {"access_token": issued.access_token, "token_type": "Bearer",
                            "expires_in": issued.expires_in, "scope": _wire_scope(issued.scope)}
    if body["scope"] == "credential":
        info = svc.tenants.resolve(issued.access_token)
        if info is not None and info.sign_identity_id:
            body["credentialID"] = info.sign_identity_id
    return no_store(body)


@router.post("/csc/{version}/oauth2/token", summary="CSC oauth2/token: the authorization code for an access token",
             openapi_extra=form_body({"grant_type": text("authorization_code"), "code": text("authorization code"),
                                      "redirect_uri": text("as in the authorization request"),
                                      "code_verifier": text("PKCE verifier"), "client_id": text("unless HTTP Basic"),
                                      "client_secret": text("unless HTTP Basic")}, ("grant_type",)),
             responses={200: {"model": CscToken, "description": "The access token"}})
async def token(version: str, request: Request) -> Response:
    return await _client_call(request, version, _token)


def _revoke(svc: Services, request: Request, params: dict[str, str]) -> Response:
    tenant = authenticate_client(svc, request, params)
    value = params.get("token")
    if not value:
        raise wire.bad("token is required")
    svc.tenants.revoke(value, tenant.id, actor=tenant.client_id)
    return Response(status_code=204, headers={"Cache-Control": "no-store"})


@router.post("/csc/{version}/oauth2/revoke", status_code=204, summary="CSC oauth2/revoke: revoke an access token",
             openapi_extra=form_body({"token": text("the token"), "token_type_hint": text("access_token"),
                                      "client_id": text("unless HTTP Basic"),
                                      "client_secret": text("unless HTTP Basic")}, ("token",)))
async def revoke(version: str, request: Request) -> Response:
    return await _client_call(request, version, _revoke)


def _push(svc: Services, request: Request, params: dict[str, str], version: str) -> Response:
    tenant = authenticate_client(svc, request, params)
    query = {k: v for k, v in params.items() if k in CSC_PARAMS and k != "request_uri"}
    if query.get("client_id", tenant.client_id) != tenant.client_id:
        raise wire.bad("client_id differs from the authenticated client")
    query["client_id"] = tenant.client_id
    if query.get("response_type") != "code":
        raise wire.bad("response_type must be code")
    redirect = _redirect_for(tenant, query)
    if redirect is None:
        raise wire.bad("redirect_uri is not registered for this client")
    consent_parameters(query, version)  # refused now, not when the browser comes
    request_uri = svc.pushed_authorizations.push(tenant.id, query)
    return no_store({"request_uri": request_uri, "expires_in": svc.pushed_authorizations.ttl}, 201)


@router.post("/csc/{version}/oauth2/pushed_authorize", status_code=201,
             summary="CSC oauth2/pushed_authorize (v2, RFC 9126): push an authorization request",
             openapi_extra=form_body({"response_type": text("code"), "client_id": text("client"),
                                      "redirect_uri": text("registered URI"), "scope": text("service or credential"),
                                      "code_challenge": text("PKCE S256"), "code_challenge_method": text("S256"),
                                      "authorization_details": text("RFC 9396 JSON"),
                                      "client_secret": text("unless HTTP Basic")}, ("response_type",)),
             responses={201: {"model": CscPushedAuthorization,
                              "description": "The request_uri of the pushed request, for oauth2/authorize"}})
async def pushed_authorize(version: str, request: Request) -> Response:
    return await _client_call(request, version, lambda svc, req, params: _push(svc, req, params, version))
