"""``POST {fortress}/api/v1/signature/extend``: raise signatures made by anyone to T, LT or LTA.

``signatureType`` names the family and the target level (``PADES_LTA``: a PDF, extended to
B-LTA). CADES_* takes a CMS signature (.p7s / .p7m) or an ASiC-S; XADES_* an XML signature or an
ASiC-E. ``PKCS1`` takes a bare signature value and answers a time-stamp token over it (DER),
the only extension such a signature has. ``signatureAlgorithm`` picks the hash of the new
time-stamps (SHA-1 and SHA-224 are raised to SHA-256); ``packaging``, ``xadesConfiguration``
and ``policy`` describe how a signature is *created* and do not change an extension.

``padesConfiguration.stamper`` puts a visible stamp on the page without touching the signatures:
it becomes the appearance of the new document time-stamp's own field, added in the time-stamp's
revision (a change every signature permits). A target level that needs no new time-stamp (the
signature is already T, or LT) gets one anyway to carry the stamp. ``csvPath`` is completed with
the response's ``ref`` as the verification code.

One configuration answers ``{"ref", "bytesB64"}`` (the vendor's documented response); several
answer a JSON array of those, in order.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from remotesign.api.deps import require_scope, services
from remotesign.api.errors import OAuthError, parse_body
from remotesign.api.fortress.answers import FortressExtended
from remotesign.api.fortress.models import ExtendConfiguration, ExtendRequest
from remotesign.api.fortress.stamper import stamp_from_fortress
from remotesign.api.fortress.tsa import timestamper_for
from remotesign.api.openapi_doc import json_answer, json_body
from remotesign.core import scopes
from remotesign.core.extension import ExtensionError
from remotesign.core.offload import off_loop
from remotesign.core.tenants import TokenInfo
from remotesign.formats.interface import Level
from remotesign.service import Services

router = APIRouter(tags=["fortress"])

FAMILIES: dict[str, frozenset[str]] = {
    "PADES": frozenset({"pades"}),
    "CADES": frozenset({"cades", "asic-s", "asic-e-cades"}),
    "XADES": frozenset({"xades", "asic-e"}),
}
HASHES = {"SHA1": "sha256", "SHA224": "sha256", "SHA256": "sha256", "SHA384": "sha384", "SHA512": "sha512"}


def _invalid(message: str) -> OAuthError:
    return OAuthError(400, "invalid_request", message)


def target(signature_type: str) -> tuple[frozenset[str], Level]:
    """``PADES_LTA`` -> ({"pades"}, LTA); B or unknown types are the client's error."""
    family, _, level = signature_type.upper().partition("_")
    if family not in FAMILIES or level not in ("T", "LT", "LTA"):
        raise _invalid(f"signatureType {signature_type[:40]!r} cannot be extended: use CADES_, PADES_ or XADES_ "
                       "with T, LT or LTA, or PKCS1")
    return FAMILIES[family], Level[level]


def digest_of(signature_algorithm: str | None) -> str:
    if not signature_algorithm:
        return "sha256"
    _, _, hash_name = signature_algorithm.upper().rpartition("_")
    if hash_name not in HASHES:
        raise _invalid(f"signatureAlgorithm {signature_algorithm[:40]!r} is not one of RSA_SHA1 … RSA_SHA512")
    return HASHES[hash_name]


def _decode(config: ExtendConfiguration) -> bytes:
    try:
        data = base64.b64decode(config.document.bytesB64, validate=True)
    except (binascii.Error, ValueError):
        raise _invalid("document.bytesB64 is not valid Base64") from None
    if not data:
        raise _invalid("document.bytesB64 is empty")
    return data


def _stamp(config: ExtendConfiguration, ref: str) -> Any:
    """The visible stamp of a PAdES extension (on the new document time-stamp's field), with the
    response's ``ref`` as the verification code that ``csvPath`` is completed with."""
    pades = config.padesConfiguration
    if pades is None or pades.stamper is None or not config.signatureType.upper().startswith("PADES_"):
        return None
    try:
        return stamp_from_fortress(pades.stamper, verification_code=ref)
    except ValueError as exc:
        raise _invalid(f"padesConfiguration.{exc}") from exc


async def _extend_one(svc: Services, tenant_id: str, config: ExtendConfiguration) -> dict[str, str]:
    data = _decode(config)
    stamper, tsa_hash = timestamper_for(svc, config.tsa, tenant_id)
    digest = tsa_hash or digest_of(config.signatureAlgorithm)
    ref = uuid.uuid4().hex
    try:
        if config.signatureType.upper() == "PKCS1":
            result = await svc.extension.timestamp_value(tenant_id, data, timestamper=stamper, digest_algorithm=digest)
        else:
            formats, level = target(config.signatureType)
            name = config.document.name or "document"
            result, _extended = await svc.extension.extend_bytes(
                tenant_id, data, name, level, accepted_formats=formats, timestamper=stamper, digest_algorithm=digest,
                stamp=_stamp(config, ref))
    except ExtensionError as exc:
        if exc.status >= 500:
            raise OAuthError(exc.status, exc.code, exc.message) from exc
        raise _invalid(f"{exc.code}: {exc.message}") from exc
    return {"ref": ref, "bytesB64": base64.b64encode(result).decode("ascii")}


@router.post("/api/v1/signature/extend", summary="Extend signatures to T, LT or LTA (any producer's)",
             openapi_extra=json_body(ExtendRequest), response_model=None,
             responses=json_answer(FortressExtended, "The extended document (an array of them for several)"))
async def extend(request: Request, caller: TokenInfo = Depends(require_scope(scopes.SIGNATURES)),
                 svc: Services = Depends(services)) -> Any:
    raw = await request.body()

    async def work() -> JSONResponse:
        body = parse_body(ExtendRequest, raw)
        results = [await _extend_one(svc, caller.tenant_id, config) for config in body.extendSignatureConfigurations]
        return JSONResponse(results[0] if len(results) == 1 else results)

    # Parsing the (base64-laden) JSON, decoding, scratch files, validation, the database and
    # encoding the answer: all off the event loop.
    return await off_loop(work)
