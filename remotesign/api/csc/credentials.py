"""``credentials/*``: a user's sign identities as CSC credentials, and their authorization.

``list`` and ``info`` show only the calling user's own signing identities (another user's id is
simply unknown). ``authorize`` checks the user's factors and answers a SAD bound, at SCAL2, to
the hashes given; in v2 without ``authData`` it asks the user to approve on their paired device
and answers 202 with a handle for ``authorizeCheck``. ``sendOTP`` (v1) and ``getChallenge`` (v2)
send the one-time code; ``extendTransaction`` renews a SAD for its still unsigned hashes.
"""

from __future__ import annotations

import base64
from datetime import datetime, timezone
from typing import Any

from cryptography import x509
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from remotesign.api.csc import wire
from remotesign.api.csc.calls import Caller, handle, no_store
from remotesign.api.csc.credential_answers import (CscAuthorizationPending, CscCredentialInfo, CscCredentialList,
                                                   CscSad)
from remotesign.api.openapi_doc import json_body_schema
from remotesign.core.errors import CoreError
from remotesign.core.identities import IdentityInfo, Viewer
from remotesign.core.signature_activation import Authorized
from remotesign.service import Services
from remotesign.trust.qc import read_claims

router = APIRouter(tags=["csc"])

_AUTH_ONLY = "x509:keyUsage:digitalSignature"
MAX_RESULTS = 100


def _time(value: datetime, version: str) -> str:
    """GeneralizedTime as the specification writes it: ``20240101120000Z`` (v2) or with the
    ``+0000`` offset of the v1 examples."""
    return value.astimezone(timezone.utc).strftime("%Y%m%d%H%M%S") + ("Z" if version == "v2" else "+0000")


def _dn(name: x509.Name) -> str:
    return name.rfc4514_string()


def signing_identities(svc: Services, who: Caller) -> list[IdentityInfo]:
    """The user's identities that sign (authentication-only ones are not credentials)."""
    found = svc.identities.list(Viewer(who.token.tenant_id, who.token.user_id), user_id=who.token.user_id)
    return [i for i in found if _AUTH_ONLY not in i.labels]


def _cert_status(svc: Services, identity: IdentityInfo) -> str:
    try:
        svc.identities.check_usable(identity)
    except CoreError as exc:
        return {"certificate_expired": "expired", "certificate_revoked": "revoked"}.get(exc.code, "valid")
    return "valid"


def credential_info(svc: Services, who: Caller, identity: IdentityInfo, version: str, *,
                    certificates: str = "single", cert_info: bool = False, auth_info: bool = False,
                    lang: str | None = None) -> dict[str, Any]:
    algorithm = svc.raw_signing.key_algorithm(identity)
    cert = identity.certificate()
    key: dict[str, Any] = {"status": "enabled" if identity.status == "enabled" else "disabled",
                           "algo": wire.key_algorithms(algorithm),
                           "len": algorithm.rsa_bits if algorithm.is_rsa else cert.public_key().key_size}  # type: ignore[union-attr]
    if not algorithm.is_rsa:
        key["curve"] = wire.CURVE_OIDS[algorithm.value]
    out: dict[str, Any] = {"description": identity.description, "key": key}
    cert_part: dict[str, Any] = {"status": _cert_status(svc, identity)}
    if certificates in ("single", "chain"):
        ders = [identity.certificate_der] + (path_order(cert, identity.chain_der) if certificates == "chain" else [])
        cert_part["certificates"] = [base64.b64encode(d).decode() for d in ders]
    if cert_info:
        cert_part |= {"issuerDN": _dn(cert.issuer), "serialNumber": format(cert.serial_number, "X"),
                      "subjectDN": _dn(cert.subject), "validFrom": _time(cert.not_valid_before_utc, version),
                      "validTo": _time(cert.not_valid_after_utc, version)}
    out["cert"] = cert_part
    acts = svc.signature_activation
    otp = acts.otp_offered(identity.user_id, who.token.tenant_id)
    factors = acts.factors if otp else "pin"
    if version == "v1":
        out["authMode"] = "explicit"
        if auth_info or True:
            out["PIN"] = {"presence": "optional" if factors == "pin-or-otp" else "true", "format": "A",
                          "label": "PIN", "description": "Your signing PIN"}
            out["OTP"] = ({"presence": "optional" if factors == "pin-or-otp" else "true", "type": "online",
                           "ID": "OTP", "provider": "remotesign", "format": "N", "label": "One-time code",
                           "description": "The code sent to your phone or e-mail (credentials/sendOTP)"}
                          if factors != "pin" else {"presence": "false"})
    else:
        objects = [{"type": "Password", "id": "PIN", "format": "A", "label": "PIN",
                    "description": "Your signing PIN"}]
        if factors != "pin":
            objects.append({"type": "Password", "id": "OTP", "format": "N", "generator": "remotesign",
                            "label": "One-time code",
                            "description": "The code sent to your phone or e-mail (credentials/getChallenge)"})
        expression = {"pin": "PIN", "pin+otp": "PIN AND OTP", "pin-or-otp": "PIN OR OTP"}[factors]
        out["auth"] = {"mode": "explicit", "expression": expression, "objects": objects}
        out["signatureQualifier"] = signature_qualifier(cert)
    out["SCAL"] = str(acts.scal)
    out["multisign"] = acts.multisign
    out["lang"] = lang or "en-US"
    return out


def signature_qualifier(cert: x509.Certificate) -> str:
    """CSC v2's ``signatureQualifier`` from what the certificate claims (its QCStatements): a
    qualified certificate with the key in a QSCD makes QES / QESeal, one without a QSCD an AdES
    with a qualified certificate (…qc), any other an AdES; a seal by its QcType."""
    claims = read_claims(cert)
    kind = "eseal" if claims.seal else "es"
    if claims.compliance and claims.sscd:
        return f"eu_eidas_q{kind}"
    return f"eu_eidas_a{kind}" + ("qc" if claims.compliance else "")


def path_order(leaf: x509.Certificate, chain: tuple[bytes, ...]) -> list[bytes]:
    """The CA certificates in path order: the signer's issuer first, up to the root."""
    pool = [(x509.load_der_x509_certificate(d), d) for d in chain]
    out: list[bytes] = []
    current = leaf
    while pool:
        nxt = next(((c, d) for c, d in pool if c.subject == current.issuer), None)
        if nxt is None:
            break
        pool.remove(nxt)
        out.append(nxt[1])
        if nxt[0].subject == nxt[0].issuer:
            break
        current = nxt[0]
    return out + [d for _, d in pool]


def _page(data: dict[str, Any]) -> tuple[int, int]:
    size = wire.number(data, "maxResults", required=False) or MAX_RESULTS
    if not 1 <= size <= MAX_RESULTS:
        raise wire.bad("Invalid parameter maxResults")
    token = data.get("pageToken")
    if token is None:
        return 0, size
    if not isinstance(token, str) or not token.isdigit() or len(token) > 9:
        raise wire.bad("Invalid parameter pageToken")
    return int(token), size


def _list(version: str):  # type: ignore[no-untyped-def]
    def work(svc: Services, who: Caller, data: dict[str, Any]) -> Response:
        user_id = wire.text(data, "userID", required=False, max_length=200)
        if user_id is not None:
            user = svc.users.get(who.token.user_id or "", who.token.tenant_id)
            if user_id not in (user.id, user.username):
                raise wire.bad("Invalid parameter userID")
        start, size = _page(data)
        found = signing_identities(svc, who)
        only_valid = version == "v2" and wire.flag(data, "onlyValid")
        if only_valid:
            found = [i for i in found if i.active() and _cert_status(svc, i) == "valid"]
        page = found[start:start + size]
        out: dict[str, Any] = {"credentialIDs": [i.id for i in page]}
        if start + size < len(found):
            out["nextPageToken"] = str(start + size)
        if version == "v2":
            if wire.flag(data, "credentialInfo"):
                certificates = wire.text(data, "certificates", required=False) or "single"
                if certificates not in ("none", "single", "chain"):
                    raise wire.bad("Invalid parameter certificates")
                out["credentialInfos"] = [
                    {"credentialID": i.id, **credential_info(svc, who, i, version, certificates=certificates,
                                                             cert_info=wire.flag(data, "certInfo"),
                                                             auth_info=wire.flag(data, "authInfo"))}
                    for i in page]
            out["onlyValid"] = only_valid
        return no_store(out)

    return work


@router.post("/csc/{version}/credentials/list", summary="CSC credentials/list: the user's credentials",
             openapi_extra=json_body_schema({"userID": "string", "maxResults": "integer", "pageToken": "string",
                                             "credentialInfo": "boolean", "certificates": "string",
                                             "certInfo": "boolean", "authInfo": "boolean", "onlyValid": "boolean"}),
             responses={200: {"model": CscCredentialList, "description": "The user's credentials (a page)"}})
async def credentials_list(version: str, request: Request) -> Response:
    return await handle(request, version, _list(version))


def owned(svc: Services, who: Caller, data: dict[str, Any]) -> IdentityInfo:
    """The credential named in ``data``: the caller's own, and the one a credential-scope token is for."""
    credential_id = wire.text(data, "credentialID", max_length=64)
    assert credential_id is not None
    if who.credential_scope and who.token.sign_identity_id != credential_id:
        raise wire.bad("Invalid parameter credentialID")
    identity = svc.signature_activation.identity(who.signer, credential_id)
    if _AUTH_ONLY in identity.labels:
        raise wire.bad("Invalid parameter credentialID")
    return identity


def _info(version: str):  # type: ignore[no-untyped-def]
    def work(svc: Services, who: Caller, data: dict[str, Any]) -> Response:
        identity = owned(svc, who, data)
        certificates = wire.text(data, "certificates", required=False) or "single"
        if certificates not in ("none", "single", "chain"):
            raise wire.bad("Invalid parameter certificates")
        lang = wire.text(data, "lang", required=False, max_length=20)
        return no_store(credential_info(svc, who, identity, version, certificates=certificates,
                                        cert_info=wire.flag(data, "certInfo"), auth_info=wire.flag(data, "authInfo"),
                                        lang=lang))

    return work


@router.post("/csc/{version}/credentials/info", summary="CSC credentials/info: key, certificate and authorization",
             openapi_extra=json_body_schema({"credentialID": "string", "certificates": "string",
                                             "certInfo": "boolean", "authInfo": "boolean", "lang": "string"},
                                            ["credentialID"]),
             responses={200: {"model": CscCredentialInfo, "description": "The credential"}})
async def credentials_info(version: str, request: Request) -> Response:
    return await handle(request, version, _info(version))


def _factor(data: dict[str, Any], version: str, name: str) -> str | None:
    """The PIN or OTP of an explicit authorization: top-level in v1, ``authData[{id, value}]`` in v2."""
    if version == "v1" or name in data:
        return wire.text(data, name, required=False, max_length=200)
    items = data.get("authData")
    if items is None:
        return None
    if not isinstance(items, list) or len(items) > 10 or not all(isinstance(i, dict) for i in items):
        raise wire.bad("Invalid parameter authData")
    for item in items:
        if item.get("id") == name:
            value = item.get("value")
            if not isinstance(value, str) or not value or len(value) > 200:
                raise wire.bad(f"Invalid parameter authData: {name} has no value")
            return value
    return None


def _authorized(result: Authorized) -> JSONResponse:
    if result.sad is None:
        return no_store({"handle": result.handle, "responseID": result.handle, "expiresIn": result.expires_in}, 202)
    return no_store({"SAD": result.sad, "expiresIn": result.expires_in})


def _authorize(version: str):  # type: ignore[no-untyped-def]
    def work(svc: Services, who: Caller, data: dict[str, Any]) -> Response:
        identity = owned(svc, who, data)
        count = wire.number(data, "numSignatures")
        assert count is not None
        digests = wire.digests(data, version, required=False, hash_required=version == "v2")
        description = wire.text(data, "description", required=False, max_length=500)
        pin, otp = _factor(data, version, "PIN"), _factor(data, version, "OTP")
        acts = svc.signature_activation
        if version == "v2" and pin is None and otp is None and svc.devices.has_device(who.token.user_id or ""):
            return _authorized(acts.authorize_on_device(who.signer, identity.id, count, digests, description))
        return _authorized(acts.authorize(who.signer, identity.id, count, digests, pin=pin, otp=otp,
                                          description=description, address=who.address))

    return work


@router.post("/csc/{version}/credentials/authorize",
             summary="CSC credentials/authorize: the user's PIN / OTP (or device approval, v2) -> SAD",
             openapi_extra=json_body_schema({"credentialID": "string", "numSignatures": "integer",
                                             "hash": "array", "hashes": "array", "hashAlgorithmOID": "string",
                                             "PIN": "string", "OTP": "string", "authData": "array",
                                             "description": "string", "clientData": "string"},
                                            ["credentialID", "numSignatures"]),
             responses={200: {"model": CscSad, "description": "The SAD for the hashes authorized"},
                        202: {"model": CscAuthorizationPending,
                              "description": "v2 without authData, for a user with a paired device: approval "
                                             "awaited (credentials/authorizeCheck)"}})
async def credentials_authorize(version: str, request: Request) -> Response:
    return await handle(request, version, _authorize(version))


def _check(svc: Services, who: Caller, data: dict[str, Any]) -> Response:
    handle_id = data.get("handle", data.get("responseID"))
    if not isinstance(handle_id, str) or not handle_id or len(handle_id) > 64:
        raise wire.bad("Missing (or invalid type) string parameter handle")
    return _authorized(svc.signature_activation.check(who.signer, handle_id))


@router.post("/csc/{version}/credentials/authorizeCheck",
             summary="CSC credentials/authorizeCheck (v2): the SAD once the user approved on their device",
             openapi_extra=json_body_schema({"handle": "string", "responseID": "string"}),
             responses={200: {"model": CscSad, "description": "The user approved: the SAD (given once)"},
                        202: {"model": CscAuthorizationPending, "description": "The approval is still awaited"}})
async def credentials_authorize_check(version: str, request: Request) -> Response:
    return await handle(request, version, _check)


def _send_otp(svc: Services, who: Caller, data: dict[str, Any]) -> Response:
    identity = owned(svc, who, data)
    svc.signature_activation.send_otp(who.signer, identity.id)
    return Response(status_code=204, headers={"Cache-Control": "no-store"})


@router.post("/csc/{version}/credentials/sendOTP", summary="CSC credentials/sendOTP: send the one-time code",
             status_code=204, openapi_extra=json_body_schema({"credentialID": "string"}, ["credentialID"]))
async def credentials_send_otp(version: str, request: Request) -> Response:
    return await handle(request, version, _send_otp)


def _challenge(svc: Services, who: Caller, data: dict[str, Any]) -> Response:
    identity = owned(svc, who, data)
    object_id = wire.text(data, "authObjectID", required=False, max_length=40) or "OTP"
    if object_id != "OTP":
        raise wire.bad("Invalid parameter authObjectID")
    svc.signature_activation.send_otp(who.signer, identity.id)
    return Response(status_code=204, headers={"Cache-Control": "no-store"})


@router.post("/csc/{version}/credentials/getChallenge",
             summary="CSC credentials/getChallenge (v2): the one-time code, sent out of band (204)",
             status_code=204, openapi_extra=json_body_schema({"credentialID": "string", "authObjectID": "string"},
                                                             ["credentialID"]))
async def credentials_get_challenge(version: str, request: Request) -> Response:
    return await handle(request, version, _challenge)


def _extend(version: str):  # type: ignore[no-untyped-def]
    def work(svc: Services, who: Caller, data: dict[str, Any]) -> Response:
        identity = owned(svc, who, data)
        sad = wire.text(data, "SAD", max_length=200)
        assert sad is not None
        digests = wire.digests(data, version, required=False, hash_required=False)
        return _authorized(svc.signature_activation.extend(who.signer, sad, identity.id, digests))

    return work


@router.post("/csc/{version}/credentials/extendTransaction",
             summary="CSC credentials/extendTransaction: a new SAD for the hashes not signed yet",
             openapi_extra=json_body_schema({"credentialID": "string", "SAD": "string", "hash": "array",
                                             "hashes": "array", "hashAlgorithmOID": "string"},
                                            ["credentialID", "SAD"]),
             responses={200: {"model": CscSad, "description": "A new SAD for the hashes not signed yet"}})
async def credentials_extend(version: str, request: Request) -> Response:
    return await handle(request, version, _extend(version))
