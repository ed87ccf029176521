"""Raw signatures with server-held keys (eSigP ``signatures/server/raw`` and ``.../batch``).

The token must come from the user's consent for exactly these digests (SCAL2, enforced by
``core.sole_control``). Every request is decoded and parsed against the identity's key before the
consent is spent, so a malformed call never burns it.

The handlers are ``async`` and make the whole call in one thread-pool hop: the body validated
there (documented as before), the bearer token read by the signing transaction's own query
(``RawSigningService.sign_bearer``; any other token goes through ``caller``, which answers it
before a bad body is), the JSON answer written directly. A batch of one is a few milliseconds, and
the hops of synchronous dependencies, the token's own ORM lookup and the generic response
encoding were a large part of it."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from remotesign.api.deps import bearer_token
from remotesign.api.errors import parse_body
from remotesign.api.esigp.auth import ID_PATTERN, b64, bad_request, caller, core_errors
from remotesign.api.esigp.answers import RawSignatures
from remotesign.api.openapi_doc import binary_answer, json_answer, json_body
from remotesign.core.raw_signing import MAX_BATCH, RawRequest, parse_request
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
    allow_sha1 = svc.raw_signing.allow_sha1
    with core_errors():
        for n, (digest_value, data, algorithm) in enumerate(items):
            if (digest_value is None) == (data is None):
                raise bad_request(f"{_where(n, batch)}give either digest_value or data")
            if data is None:
                try:
                    digest = base64.b64decode(digest_value, validate=True)
                except (binascii.Error, ValueError):
                    raise bad_request(f"{_where(n, batch)}digest_value is not valid base64") from None
                parsed.append(parse_request(key_algorithm, algorithm, digest=digest, allow_sha1=allow_sha1))
            else:
                info = b64(data, f"{_where(n, batch)}data")
                parsed.append(parse_request(key_algorithm, algorithm, digest_info=info, allow_sha1=allow_sha1))
    return parsed


def _where(n: int, batch: bool) -> str:
    return f"requests[{n}]." if batch else ""


def _call(request: Request, model: type[ServerRaw] | type[ServerRawBatch], raw: bytes) -> list[bytes]:
    """The whole call, in one thread-pool hop: the body is validated, the bearer token checked (a
    bad token is answered before a bad body, as a dependency's check would be), the digests signed."""
    svc: Services = request.app.state.services
    try:
        body = parse_body(model, raw)
    except RequestValidationError:
        caller(request, svc)
        raise
    if isinstance(body, ServerRawBatch):
        items = [(r.digest_value, r.data, r.signature_algorithm or body.signature_algorithm) for r in body.requests]
    else:
        items = [(body.digest_value, None, body.signature_algorithm)]
    requests = _parser(svc, items, batch=isinstance(body, ServerRawBatch))
    with core_errors():
        return svc.raw_signing.sign_bearer(bearer_token(request), body.sign_identity_id, requests,
                                           lambda: caller(request, svc))


@router.post("/esigp/v1/signatures/server/raw", response_class=Response,
             responses=binary_answer("application/octet-stream",
                                     description="the signature value: PKCS#1 v1.5 or DER ECDSA"),
             summary="Sign one digest with a server-held identity (binary answer)",
             openapi_extra=json_body(ServerRaw))
async def server_raw(request: Request) -> Response:
    [value] = await run_in_threadpool(_call, request, ServerRaw, await request.body())
    return Response(value, media_type="application/octet-stream", headers={"Cache-Control": "no-store"})


@router.post("/esigp/v1/signatures/server/raw/batch", summary="Sign several digests at once, in order",
             responses=json_answer(RawSignatures, "One signature value per request, in order"),
             openapi_extra=json_body(ServerRawBatch))
async def server_raw_batch(request: Request) -> Response:
    values = await run_in_threadpool(_call, request, ServerRawBatch, await request.body())
    payload = {"signatures": [base64.b64encode(v).decode() for v in values]}
    return Response(json.dumps(payload, separators=(",", ":")).encode(), media_type="application/json",
                    headers={"Cache-Control": "no-store"})
