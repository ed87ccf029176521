"""Raw signatures with server-held keys (eSigP ``signatures/server/raw`` and ``.../batch``).

The token must come from the user's consent for exactly these digests (SCAL2, enforced by
``core.sole_control``). Every request is decoded and parsed against the identity's key before the
consent is spent, so a malformed call never burns it.

The handlers are ``async``: the bearer check (an async dependency, so a bad token is still
answered before a bad body) and the signing each take one thread-pool hop, and the JSON answer is
written directly. A batch of one is a few milliseconds, and the hops of synchronous dependencies
and the generic response encoding were a large part of it."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

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


async def _caller(request: Request) -> TokenInfo:
    """``caller`` (the valid bearer token) in one thread-pool hop, without the hop of the
    synchronous ``services`` dependency."""
    return await run_in_threadpool(caller, request, request.app.state.services)


def _sign(svc: Services, token: TokenInfo, identity_id: str,
          items: list[tuple[str | None, str | None, str | None]], batch: bool) -> list[bytes]:
    requests = _parser(svc, items, batch)
    with core_errors():
        return svc.raw_signing.sign(token, identity_id, requests)


@router.post("/esigp/v1/signatures/server/raw", response_class=Response,
             responses={200: {"content": {"application/octet-stream": {}},
                              "description": "the signature value: PKCS#1 v1.5 or DER ECDSA"}},
             summary="Sign one digest with a server-held identity (binary answer)")
async def server_raw(body: ServerRaw, request: Request, token: TokenInfo = Depends(_caller)) -> Response:
    [value] = await run_in_threadpool(_sign, request.app.state.services, token, body.sign_identity_id,
                                      [(body.digest_value, None, body.signature_algorithm)], False)
    return Response(value, media_type="application/octet-stream", headers={"Cache-Control": "no-store"})


@router.post("/esigp/v1/signatures/server/raw/batch", summary="Sign several digests at once, in order",
             response_model=dict[str, Any])
async def server_raw_batch(body: ServerRawBatch, request: Request, token: TokenInfo = Depends(_caller)) -> Response:
    items = [(r.digest_value, r.data, r.signature_algorithm or body.signature_algorithm) for r in body.requests]
    values = await run_in_threadpool(_sign, request.app.state.services, token, body.sign_identity_id, items, True)
    payload = {"signatures": [base64.b64encode(v).decode() for v in values]}
    return Response(json.dumps(payload, separators=(",", ":")).encode(), media_type="application/json",
                    headers={"Cache-Control": "no-store"})
