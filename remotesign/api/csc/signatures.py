"""``signatures/*``: hash signing (``signHash``), whole documents (``signDoc``, v2) and time-stamps.

A signature needs the user's authorization for exactly what it signs: a SAD from
``credentials/authorize`` (its hashes, at SCAL2) or a ``scope=credential`` access token (its hashes,
once). Everything in a request is parsed and checked against the credential's key before the
authorization is spent, so a malformed call never burns it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from typing import Any

from asn1crypto import algos, core, tsp
from fastapi import APIRouter, Request
from fastapi.responses import Response

from remotesign.api.csc import asynchronous, documents, wire
from remotesign.api.csc.answers import (CscPolledResult, CscSignatures, CscSignedDocuments, CscStarted,
                                        CscStillPending, CscTimestamp)
from remotesign.api.csc.calls import Caller, handle, no_store
from remotesign.api.csc.credentials import owned
from remotesign.api.openapi_doc import json_body_schema
from remotesign.core.raw_signing import RawRequest
from remotesign.core.signature_activation import Digests
from remotesign.service import Services

router = APIRouter(tags=["csc"])


def signing_token(svc: Services, who: Caller, data: dict[str, Any], identity_id: str, digests: Digests) -> Any:
    """The one-shot authorization of this call: taken from the SAD, or the credential token itself."""
    sad = wire.text(data, "SAD", required=False, max_length=200)
    if sad is not None:
        return svc.signature_activation.spend(who.signer, sad, identity_id, digests)
    if who.credential_scope:
        return who.token
    raise wire.bad("Missing (or invalid type) string parameter SAD")


def _sign_hash(version: str):  # type: ignore[no-untyped-def]
    def work(svc: Services, who: Caller, data: dict[str, Any]) -> Response:
        identity = owned(svc, who, data)
        field = "hashes" if version == "v2" and "hashes" in data else "hash"
        values = [wire.decode_b64(v) for v in wire.strings(data, field) or []]
        oid_field = "hashAlgorithmOID" if "hashAlgorithmOID" in data else "hashAlgo"
        oid = wire.text(data, oid_field, required=False, max_length=100)
        given = wire.hash_name(oid, oid_field) if oid is not None else None
        sign_algo = wire.text(data, "signAlgo", max_length=100)
        assert sign_algo is not None
        algorithm = svc.raw_signing.key_algorithm(identity)
        name, scheme = wire.signature_scheme(algorithm, sign_algo,
                                            wire.text(data, "signAlgoParams", required=False, max_length=400), given)
        if name == "sha1" and not svc.settings.allow_sha1:
            raise wire.bad("Invalid parameter hashAlgo: SHA-1 signatures are not made by this service")
        digests = Digests(name, tuple(values))
        digests.check(svc.signature_activation.multisign)
        mode = wire.text(data, "operationMode", required=False, max_length=2) or "S"
        if mode not in ("S", "A") or (mode == "A" and version == "v1"):
            raise wire.bad("Invalid parameter operationMode")
        requests = [RawRequest(v, name, scheme) for v in values]

        def sign() -> dict[str, Any]:
            token = signing_token(svc, who, data, identity.id, digests)
            signatures = svc.raw_signing.sign(token, identity.id, requests)
            return {"signatures": [base64.b64encode(s).decode() for s in signatures]}

        if mode == "A":
            return asynchronous.start(svc, who, data, version, "signHash")
        return no_store(sign())

    return work


@router.post("/csc/{version}/signatures/signHash",
             summary="CSC signatures/signHash: sign hashes (PKCS#1 v1.5, RSASSA-PSS, ECDSA in DER)",
             openapi_extra=json_body_schema({"credentialID": "string", "SAD": "string", "hash": "array",
                                             "hashes": "array", "hashAlgo": "string", "hashAlgorithmOID": "string",
                                             "signAlgo": "string", "signAlgoParams": "string",
                                             "operationMode": "string", "validity_period": "integer",
                                             "clientData": "string"}, ["credentialID", "signAlgo"]),
             responses={200: {"model": CscSignatures, "description": "One signature value per hash"},
                        202: {"model": CscStarted, "description": "operationMode A (v2): started"}})
async def sign_hash(version: str, request: Request) -> Response:
    return await handle(request, version, _sign_hash(version))


@router.post("/csc/{version}/signatures/signDoc",
             summary="CSC signatures/signDoc (v2): PAdES, CAdES or XAdES of documents or document digests",
             openapi_extra=json_body_schema({"credentialID": "string", "signatureQualifier": "string", "SAD": "string",
                                             "documents": "array", "documentDigests": "array",
                                             "operationMode": "string", "validity_period": "integer",
                                             "returnValidationInfo": "boolean", "clientData": "string"}),
             responses={200: {"model": CscSignedDocuments, "description": "The signed documents or signature "
                                                                          "objects"},
                        202: {"model": CscStarted, "description": "operationMode A: started"}})
async def sign_doc(version: str, request: Request) -> Response:
    return await handle(request, version, documents.sign_doc(version, signing_token))


def _poll(svc: Services, who: Caller, data: dict[str, Any]) -> Response:
    response_id = wire.text(data, "responseID", max_length=100)
    assert response_id is not None
    return asynchronous.poll(svc, who, response_id)


@router.post("/csc/{version}/signatures/signPolling",
             summary="CSC signatures/signPolling (v2): the result of an asynchronous signHash or signDoc",
             openapi_extra=json_body_schema({"responseID": "string"}, ["responseID"]),
             responses={200: {"model": CscPolledResult, "description": "The result of the signHash or signDoc "
                                                                       "call (given once; its error, if it failed)"},
                        202: {"model": CscStillPending, "description": "Not finished yet"}})
async def sign_polling(version: str, request: Request) -> Response:
    return await handle(request, version, _poll)


def install(svc: Services) -> None:
    """The runners of the asynchronous calls: the synchronous calls, made later."""
    asynchronous.install(svc, {("v2", "signHash"): _sign_hash("v2"),
                               ("v2", "signDoc"): documents.sign_doc("v2", signing_token)})


def _timestamp(svc: Services, who: Caller, data: dict[str, Any]) -> Response:
    imprint = wire.decode_b64(wire.text(data, "hash", max_length=200) or "")
    name = wire.hash_name(wire.text(data, "hashAlgo", required=False, max_length=100) or
                          wire.text(data, "hashAlgorithmOID", required=False, max_length=100), "hashAlgo")
    if len(imprint) != hashlib.new(name).digest_size or name == "sha1":
        raise wire.bad("Invalid parameter hash: not a SHA-2 value of the hashAlgo named")
    nonce = wire.text(data, "nonce", required=False, max_length=64)
    request = {"version": "v1", "message_imprint": {"hash_algorithm": algos.DigestAlgorithm({"algorithm": name}),
                                                    "hashed_message": imprint}, "cert_req": True}
    if nonce is not None:
        try:
            request["nonce"] = core.Integer(int(nonce, 16))
        except ValueError:
            raise wire.bad("Invalid parameter nonce: a hexadecimal number") from None
    reply = asyncio.run(svc.timestamper.async_request_tsa_response(tsp.TimeStampReq(request)))
    if reply["status"]["status"].native not in ("granted", "granted_with_mods"):
        raise wire.bad("the time-stamping authority refused the request", "timestamp_failed", 502)
    return no_store({"timestamp": base64.b64encode(reply["time_stamp_token"].dump()).decode()})


@router.post("/csc/{version}/signatures/timestamp", summary="CSC signatures/timestamp: an RFC 3161 time-stamp token",
             openapi_extra=json_body_schema({"hash": "string", "hashAlgo": "string", "size": "integer",
                                             "nonce": "string", "clientData": "string"}, ["hash", "hashAlgo"]),
             responses={200: {"model": CscTimestamp, "description": "The time-stamp token"}})
async def timestamp(version: str, request: Request) -> Response:
    return await handle(request, version, _timestamp)
