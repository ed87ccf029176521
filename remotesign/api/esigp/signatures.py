"""Raw signatures with server-held keys (eSigP ``signatures/server/raw`` and ``.../batch``).

The token must come from the user's consent for exactly these digests (SCAL2, enforced by
``core.sole_control``). Every request is decoded and parsed against the identity's key before the
consent is spent, so a malformed call never burns it."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, ConfigDict, Field

from remotesign.api.deps import services
from remotesign.api.esigp.auth import ID_PATTERN, b64, bad_request, caller, core_errors
from remotesign.core.raw_signing import MAX_BATCH, RawRequest, parse_request
from remotesign.core.tenants import TokenInfo
from remotesign.keystore.base import KeyAlgorithm
from remotesign.service import Services

router = APIRouter(tags=["esigp signatures"])

MAX_B64 = 400  # a base64 SHA-512 digest has 88 characters, a DigestInfo for it 112


class Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ServerRaw(Lenient):
    digest_value: str = Field(min_length=1, max_length=MAX_B64, description="base64 of the hash to sign")
    signature_algorithm: str | None = Field(default=None, max_length=40,
                                            description="rsa-sha256|rsa-sha384|rsa-sha512|rsa-sha1|ecdsa[-sha*]")
    sign_identity_id: str = Field(pattern=ID_PATTERN)


class BatchItem(Lenient):
    digest_value: str | None = Field(default=None, min_length=1, max_length=MAX_B64)
    data: str | None = Field(default=None, min_length=1, max_length=MAX_B64,
                             description="base64 DER DigestInfo (with signature_algorithm rsa-pkcs1)")
    signature_algorithm: str | None = Field(default=None, max_length=40)


class ServerRawBatch(Lenient):
    sign_identity_id: str = Field(pattern=ID_PATTERN)
    signature_algorithm: str | None = Field(default=None, max_length=40)
    requests: list[BatchItem] = Field(min_length=1, max_length=MAX_BATCH)


def _parser(svc: Services, items: list[tuple[str | None, str | None, str | None]],
            batch: bool = False) -> Callable[[KeyAlgorithm], list[RawRequest]]:
    """(digest_value, data, signature_algorithm) triples -> a function of the identity key's
    algorithm giving the parsed requests, or raising a 4xx (``RawSigningService.sign`` calls it
    once it has resolved the identity, before the consent is spent)."""
    return lambda key_algorithm: _parse(svc, key_algorithm, items, batch)


def _parse(svc: Services, key_algorithm: KeyAlgorithm, items: list[tuple[str | None, str | None, str | None]],
           batch: bool = False) -> list[RawRequest]:
    parsed = []
    for n, (digest_value, data, algorithm) in enumerate(items):
        where = f"requests[{n}]." if batch else ""
        if (digest_value is None) == (data is None):
            raise bad_request(f"{where}give either digest_value or data")
        digest = b64(digest_value, f"{where}digest_value") if digest_value is not None else None
        info = b64(data, f"{where}data") if data is not None else None
        with core_errors():
            parsed.append(parse_request(key_algorithm, algorithm, digest=digest, digest_info=info,
                                        allow_sha1=svc.raw_signing.allow_sha1))
    return parsed


@router.post("/esigp/v1/signatures/server/raw", response_class=Response,
             responses={200: {"content": {"application/octet-stream": {}},
                              "description": "the signature value: PKCS#1 v1.5 or DER ECDSA"}},
             summary="Sign one digest with a server-held identity (binary answer)")
def server_raw(body: ServerRaw, token: TokenInfo = Depends(caller), svc: Services = Depends(services)) -> Response:
    requests = _parser(svc, [(body.digest_value, None, body.signature_algorithm)])
    with core_errors():
        [value] = svc.raw_signing.sign(token, body.sign_identity_id, requests)
    return Response(value, media_type="application/octet-stream", headers={"Cache-Control": "no-store"})


@router.post("/esigp/v1/signatures/server/raw/batch", summary="Sign several digests at once, in order")
def server_raw_batch(body: ServerRawBatch, response: Response, token: TokenInfo = Depends(caller),
                     svc: Services = Depends(services)) -> dict[str, Any]:
    items = [(r.digest_value, r.data, r.signature_algorithm or body.signature_algorithm) for r in body.requests]
    requests = _parser(svc, items, batch=True)
    with core_errors():
        values = svc.raw_signing.sign(token, body.sign_identity_id, requests)
    response.headers["Cache-Control"] = "no-store"
    return {"signatures": [base64.b64encode(v).decode() for v in values]}
