"""``POST {fortress}/api/v1/signature``: a signature request; its execution; its state.

The vendor's SDK names these calls (``signatureRequest``, ``getSignatureAuthorizationUri``,
``executeSignature``) but not all their paths (vendor notes §3.3); remotesign chose, and documents:

* ``POST /api/v1/signature`` → ``{"exeCode", "authCode"}``. With ``userCode`` the user authorizes
  the request in the browser; ``certificateCode`` and ``certificateFilter`` narrow which of their
  certificates may sign. Without ``userCode``, ``certificateCode`` names an e-seal of one of the
  client's legal persons, signed unattended (``authCode`` is then null).
* The authorization URI for ``authCode`` is ``{fortress}/oauth2/v1/auth?response_type=code&
  client_id=…&auth_code=…&redirect_uri=…&state=…`` (api/fortress/authorize.py).
* ``POST /api/v1/signature/execute/{exeCode}`` → ``[{"ref", "bytesB64"}]``, one per
  configuration, in order. A second execution answers the same documents; it never signs again.
* ``GET /api/v1/signature/{exeCode}`` → the request's state (``status``, documents, errors).

Each ``signatureConfigurations[]`` entry: ``signatureType`` ``PADES_B|_T|_LT|_LTA``, ``CADES_…``,
``XADES_…`` or ``PKCS1`` (a bare signature value over the document); ``signatureAlgorithm``
``RSA_SHA256|RSA_SHA384|RSA_SHA512`` (an EC key signs ECDSA with that hash; SHA-1 and SHA-224
signatures are not made); ``packaging`` ``ENVELOPED`` (PAdES; XAdES in the XML it signs),
``ENVELOPING`` (CAdES attached, XAdES with the document inside) or ``DETACHED``; ``reason``;
``padesConfiguration.stamper`` (a visible stamp, csvPath completed with ``ref``);
``xadesConfiguration``; ``tsa`` (the time-stamping authority of every time-stamp of T, LT and
LTA; ``timestampAlgorithm`` is the hash of document and archive time-stamps, a signature
time-stamp is over the signature's own hash); ``policy`` (``id``, ``digestAlgorithm``,
``digestValueB64``: an explicit policy, XAdES/CAdES-EPES).

Errors (``{"error", "error_description"}``): ``invalid_request`` 400, ``invalid_token`` 401,
``access_denied`` / ``unattended_not_allowed`` / ``expired`` (the user's authorization ran out) /
``replayed`` 403, ``user_not_found`` / ``certificate_not_found`` / ``request_not_found`` 404,
``authorization_pending`` / ``in_progress`` 409, ``expired_request`` 410, a format's own code
(``invalid_stamp``, ``not_xml`` …) 422, ``tsa_unreachable`` / ``tsa_refused`` 502.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from remotesign.api.deps import require_scope, services
from remotesign.api.errors import OAuthError, parse_body
from remotesign.api.fortress.answers import FortressSignatureCreated, FortressSignatureState, FortressSignedDocuments
from remotesign.api.fortress.models import SignatureConfiguration, SignatureRequestBody
from remotesign.api.fortress.stamper import stamp_from_fortress
from remotesign.api.openapi_doc import json_answer, json_body
from remotesign.core import scopes
from remotesign.core.callbacks import is_callback_url
from remotesign.core.document_signer import RAW, SignatureSpec
from remotesign.core.errors import CoreError
from remotesign.core.offload import off_loop
from remotesign.core.signature_requests import CertificateFilter, NewDocument, RequestInfo
from remotesign.core.tenants import TokenInfo
from remotesign.formats.interface import Level, Packaging, SignaturePolicy, XmlOptions
from remotesign.service import Services
from remotesign.trust.tsa_clients import TsaChoice, TsaError

router = APIRouter(tags=["fortress"])
Client = Depends(require_scope(scopes.SIGNATURES))

KINDS = {"PADES": "pades", "CADES": "cades", "XADES": "xades"}
DEFAULT_PACKAGING = {"pades": Packaging.ENVELOPED, "cades": Packaging.ENVELOPING, "xades": Packaging.ENVELOPED,
                     RAW: Packaging.DETACHED}
HASHES = {"SHA256": "sha256", "SHA384": "sha384", "SHA512": "sha512"}
FILTER_KEYS = {"issuer.cn": "issuer_cn", "subject.cn": "subject_cn", "oid": "policy_oids"}


def _invalid(message: str) -> OAuthError:
    return OAuthError(400, "invalid_request", message)


def _kind_and_level(signature_type: str) -> tuple[str, Level]:
    wire = signature_type.upper()
    if wire in ("PKCS1", "PKCS1_B"):
        return RAW, Level.B
    family, _, level = wire.partition("_")
    if family not in KINDS or level not in ("", "B", "T", "LT", "LTA"):
        raise _invalid(f"signatureType {signature_type[:40]!r}: use PADES_, CADES_ or XADES_ with B, T, LT or LTA, "
                       "or PKCS1")
    return KINDS[family], Level[level or "B"]


def _hash(signature_algorithm: str | None) -> str:
    if not signature_algorithm:
        return "sha256"
    _, _, name = signature_algorithm.upper().replace("-", "").rpartition("_")
    if name not in HASHES:
        raise _invalid(f"signatureAlgorithm {signature_algorithm[:40]!r}: use RSA_SHA256, RSA_SHA384 or RSA_SHA512 "
                       "(no new SHA-1 or SHA-224 signature is made)")
    return HASHES[name]


def _packaging(config: SignatureConfiguration, kind: str) -> Packaging:
    if not config.packaging or kind == RAW:
        return DEFAULT_PACKAGING[kind]
    try:
        return Packaging[config.packaging.upper()]
    except KeyError:
        raise _invalid(f"packaging {config.packaging[:40]!r}: use ENVELOPED, ENVELOPING or DETACHED") from None


def _policy(config: SignatureConfiguration) -> SignaturePolicy | None:
    p = config.policy
    if p is None or not p.id:
        return None
    if not p.digestValueB64:
        raise _invalid("policy needs id, digestAlgorithm and digestValueB64")
    try:
        digest = base64.b64decode(p.digestValueB64, validate=True)
    except (binascii.Error, ValueError):
        raise _invalid("policy.digestValueB64 is not valid Base64") from None
    algorithm = (p.digestAlgorithm or "SHA256").upper().replace("-", "")
    if algorithm not in HASHES:
        raise _invalid(f"policy.digestAlgorithm {p.digestAlgorithm!r}: use SHA256, SHA384 or SHA512")
    return SignaturePolicy(identifier=p.id, digest_algorithm=HASHES[algorithm], digest=digest,
                           description=p.description)


def _xml(config: SignatureConfiguration) -> tuple[XmlOptions, tuple[str, ...]]:
    x = config.xadesConfiguration
    if x is None:
        return XmlOptions(), ()
    return (XmlOptions(signed_info_c14n=x.signedInfoCanonicalizationMethod,
                       signed_properties_c14n=x.signedPropertiesCanonicalizationMethod,
                       transforms=tuple(x.transformAlgorithms or ()), xpath=x.xPathLocationString,
                       reference_uri=x.dssReferenceUri),
            tuple(x.claimedSignerRoles or ()))


def _tsa(config: SignatureConfiguration) -> TsaChoice | None:
    tsa = config.tsa
    if tsa is None or not (tsa.url or tsa.certificateCode or tsa.user):
        return None
    try:
        return TsaChoice.from_fortress(tsa.model_dump(exclude_none=True))
    except TsaError as exc:
        raise _invalid(f"tsa: {exc.message}") from exc


def new_document(n: int, config: SignatureConfiguration) -> NewDocument:
    """One configuration as the core's document and signature description."""
    kind, level = _kind_and_level(config.signatureType)
    ref = config.ref or None
    stamp = None
    if config.padesConfiguration is not None and config.padesConfiguration.stamper is not None and kind == "pades":
        try:
            stamp = stamp_from_fortress(config.padesConfiguration.stamper, verification_code=ref)
        except ValueError as exc:
            raise _invalid(f"signatureConfigurations[{n}].padesConfiguration.{exc}") from exc
    xml, roles = _xml(config)
    try:
        spec = SignatureSpec(kind=kind, level=level, packaging=_packaging(config, kind),
                             hash_name=_hash(config.signatureAlgorithm), reason=config.reason, stamp=stamp, xml=xml,
                             policy=_policy(config), roles=roles)
        content = base64.b64decode(config.document.bytesB64, validate=True)
    except CoreError as exc:
        raise _invalid(f"signatureConfigurations[{n}]: {exc.message}") from exc
    except (binascii.Error, ValueError):
        raise _invalid(f"signatureConfigurations[{n}].document.bytesB64 is not valid Base64") from None
    return NewDocument(name=config.document.name or f"document-{n + 1}", content=content, spec=spec, ref=ref,
                       tsa=_tsa(config))


def _filter(body: SignatureRequestBody) -> CertificateFilter:
    given = body.certificateFilter or {}
    unknown = [k for k in given if k not in FILTER_KEYS]
    if unknown:
        raise _invalid(f"certificateFilter: unknown key {unknown[0][:40]!r} (use issuer.cn, subject.cn, oid)")
    values = {FILTER_KEYS[k]: tuple(str(v)[:200] for v in vs[:20]) for k, vs in given.items()}
    return CertificateFilter(identity_id=body.certificateCode or None, **values)


def _flag(value: bool | str | None) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def _callback(url: str | None) -> str | None:
    if not url:
        return None
    if not is_callback_url(url):
        raise _invalid("callbackUrl must be an absolute http(s) URL")
    return url


def _core_error(exc: CoreError) -> OAuthError:
    return OAuthError(exc.status, exc.code, exc.message)


def _millis(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1000)


def state_json(info: RequestInfo) -> dict[str, Any]:
    return {"exeCode": info.id, "status": info.status.upper(), "mode": info.mode.upper(),
            "certificateCode": info.sign_identity_id, "documents": [
                {"ref": ref, "name": name} for ref, name in zip(info.refs, info.documents)],
            "error": info.error_code, "error_description": info.error_message,
            "async": info.run_async, "callbackUrl": info.callback_url,
            "callbackStatus": info.callback_status.upper(), "callbackAttempts": info.callback_attempts,
            "callbackError": info.callback_error, "dateCreated": _millis(info.created_at),
            "dateExpired": _millis(info.expires_at), "dateFinished": _millis(info.finished_at)}


@router.post("/api/v1/signature", summary="Create a signature request → {exeCode, authCode}",
             openapi_extra=json_body(SignatureRequestBody), response_model=None,
             responses=json_answer(FortressSignatureCreated, "The request"))
async def create(request: Request, caller: TokenInfo = Client, svc: Services = Depends(services)) -> Any:
    raw = await request.body()

    async def work() -> JSONResponse:
        body = parse_body(SignatureRequestBody, raw)
        documents = [new_document(n, c) for n, c in enumerate(body.signatureConfigurations)]
        try:
            info = svc.signature_requests.create(
                caller.tenant_id, documents, user_code=body.userCode, certificates=_filter(body),
                certificate_password=body.certificatePassword, run_async=_flag(body.async_),
                callback_url=_callback(body.callbackUrl), multifactor=_flag(body.multifactorAuth))
        except CoreError as exc:
            raise _core_error(exc) from exc
        return JSONResponse({"exeCode": info.id, "authCode": info.auth_code if info.mode == "interactive" else None})

    return await off_loop(work)


@router.post("/api/v1/signature/execute/{exe_code}", summary="Execute an authorized request → [{ref, bytesB64}]",
             response_model=None, responses=json_answer(FortressSignedDocuments, "The signed documents, in order"))
async def execute(exe_code: str, caller: TokenInfo = Client, svc: Services = Depends(services)) -> Any:
    async def work() -> JSONResponse:
        try:
            signed = await svc.signature_requests.execute(caller.tenant_id, exe_code)
        except CoreError as exc:
            raise _core_error(exc) from exc
        return JSONResponse([{"ref": d.ref, "bytesB64": base64.b64encode(d.content).decode("ascii")} for d in signed])

    return await off_loop(work)


@router.get("/api/v1/signature/{exe_code}", summary="The state of a signature request", response_model=None,
            responses=json_answer(FortressSignatureState, "The request's state"))
async def state(exe_code: str, caller: TokenInfo = Client, svc: Services = Depends(services)) -> Any:
    def read() -> dict[str, Any]:
        try:
            return state_json(svc.signature_requests.get(caller.tenant_id, exe_code))
        except CoreError as exc:
            raise _core_error(exc) from exc

    return await run_in_threadpool(read)
