"""Signing API: CalculateDigest, finalizeSigning, addArchive, eSealCreate (paths are matched
case-insensitively, under /api-sign/ and the /api-signing/ spelling some examples use)."""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from remotesign.api.deps import services
from remotesign.api.json_guard import JsonInputError, loads_untrusted
from remotesign.api.eparaksts.envelope import Caller, EnvelopeError, error_entry, ok
from remotesign.api.eparaksts.sign_answers import CalculateDigestAnswer, SessionResultsAnswer
from remotesign.api.openapi_doc import json_body
from remotesign.core.offload import off_loop
from remotesign.core.signature_values import SignerInputError, decode_b64, load_certificate
from remotesign.core.signing import Outcome, SigningError
from remotesign.core.sole_control import digests_summary
from remotesign.core.tenants import TokenInfo
from remotesign.service import Services

router = APIRouter(tags=["eParaksts signing"])

MAX_SESSIONS = 100


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class SessionRef(_Body):
    sessionId: str = Field(max_length=128)


class CalculateDigestRequest(_Body):
    sessions: list[SessionRef] = Field(min_length=1, max_length=MAX_SESSIONS)
    certificate: str = Field(min_length=1, max_length=64 * 1024)
    signAsPdf: bool = False
    createNewEdoc: bool = False


class SignatureValue(_Body):
    sessionId: str = Field(max_length=128)
    signatureValue: str = Field(min_length=1, max_length=16 * 1024)


class FinalizeRequest(_Body):
    sessionSignatureValues: list[SignatureValue] = Field(min_length=1, max_length=MAX_SESSIONS)
    authCertificate: str | None = Field(default=None, max_length=64 * 1024)


class ArchiveRequest(_Body):
    sessions: list[SessionRef] = Field(min_length=1, max_length=MAX_SESSIONS)
    authCertificate: str | None = Field(default=None, max_length=64 * 1024)


class ESealRequest(_Body):
    sessions: list[SessionRef] = Field(min_length=1, max_length=MAX_SESSIONS)
    signAsPdf: bool = False
    createNewEdoc: bool = False
    signKey: str = Field(min_length=1, max_length=128 * 1024)
    signKeyPassword: str = Field(min_length=1, max_length=4096)
    authCertificate: str | None = Field(default=None, max_length=64 * 1024)


def _parse(model: type[_Body], raw: bytes) -> Any:
    try:
        return model.model_validate(loads_untrusted(raw))
    except JsonInputError as exc:
        raise EnvelopeError(400, "invalid_json", str(exc)) from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise EnvelopeError(400, "invalid_request", f"{where}: {first.get('msg')}") from exc


def _unique(ids: list[str]) -> list[str]:
    if len(set(ids)) != len(ids):
        raise EnvelopeError(400, "duplicate_session", "a session appears twice in the request")
    return ids


def _results(outcomes: list[Outcome]) -> tuple[list[dict[str, Any]], int]:
    """Per-session results; 200 when all succeeded, else the first error's status (the envelope still
    lists every session, successful ones included)."""
    results: list[dict[str, Any]] = []
    status = 200
    for o in outcomes:
        entry: dict[str, Any] = {"sessionId": o.session_id}
        if o.error is not None:
            entry["error"] = error_entry(o.error.code, o.error.message)
            status = status if status != 200 else o.error.status
        results.append(entry)
    return results, status


async def calculate_digest(raw: bytes, caller: TokenInfo, svc: Services) -> JSONResponse:
    body: CalculateDigestRequest = _parse(CalculateDigestRequest, raw)
    ids = _unique([s.sessionId for s in body.sessions])
    try:
        signer = svc.signing.check_signer(load_certificate(body.certificate))
    except (SignerInputError, SigningError) as exc:
        raise EnvelopeError(400, exc.code, exc.message) from exc
    outcomes = await svc.signing.prepare(caller.tenant_id, ids, signer, sign_as_pdf=body.signAsPdf,
                                         create_new_container=body.createNewEdoc)
    digests = [o.digest for o in outcomes if o.digest is not None]
    entries, status = [], 200
    for o in outcomes:
        entry: dict[str, Any] = {"sessionId": o.session_id}
        if o.digest is not None:
            entry["digest"] = base64.b64encode(o.digest).decode()
        else:
            assert o.error is not None
            entry["error"] = error_entry(o.error.code, o.error.message)
            status = o.error.status if status == 200 else status
        entries.append(entry)
    data = {"sessionDigests": entries,
            "digests_summary": digests_summary(digests, signer.algorithm.api_algorithm),
            "algorithm": signer.algorithm.api_algorithm,
            "signature_algorithm": signer.algorithm.esigp_algorithm}
    return JSONResponse(ok(data), status_code=status)


async def finalize_signing(raw: bytes, caller: TokenInfo, svc: Services) -> JSONResponse:
    body: FinalizeRequest = _parse(FinalizeRequest, raw)
    _unique([v.sessionId for v in body.sessionSignatureValues])
    values = []
    for v in body.sessionSignatureValues:
        try:
            values.append((v.sessionId, decode_b64(v.signatureValue, "signatureValue")))
        except SignerInputError as exc:
            raise EnvelopeError(400, exc.code, f"session {v.sessionId}: {exc.message}") from exc
    results, status = _results(await svc.signing.finalize(caller.tenant_id, values))
    return JSONResponse(ok({"results": results}), status_code=status)


async def add_archive(raw: bytes, caller: TokenInfo, svc: Services) -> JSONResponse:
    body: ArchiveRequest = _parse(ArchiveRequest, raw)
    ids = _unique([s.sessionId for s in body.sessions])
    results, status = _results(await svc.signing.archive(caller.tenant_id, ids))
    return JSONResponse(ok({"results": results}), status_code=status)


async def eseal_create(raw: bytes, caller: TokenInfo, svc: Services) -> JSONResponse:
    body: ESealRequest = _parse(ESealRequest, raw)
    ids = _unique([s.sessionId for s in body.sessions])
    try:
        pfx = decode_b64(body.signKey, "signKey")
        password = decode_b64(body.signKeyPassword, "signKeyPassword")
        outcomes = await svc.seal.seal(caller.tenant_id, ids, pfx, password, sign_as_pdf=body.signAsPdf,
                                       create_new_container=body.createNewEdoc)
    except (SignerInputError, SigningError) as exc:
        raise EnvelopeError(400, exc.code, exc.message) from exc
    results, status = _results(outcomes)
    return JSONResponse(ok({"results": results}), status_code=status)


OPERATIONS = {"calculatedigest": calculate_digest, "finalizesigning": finalize_signing,
              "addarchive": add_archive, "esealcreate": eseal_create}
Handler = Callable[[bytes, TokenInfo, Services], Awaitable[JSONResponse]]


async def _run(handler: Handler, request: Request, caller: TokenInfo, svc: Services) -> JSONResponse:
    raw = await request.body()
    # Parsing, the signer's checks (path building, PFX decryption), the database and the signing
    # itself run in a worker thread with its own event loop (core/offload.py), never on this one.
    return await off_loop(lambda: handler(raw, caller, svc))


def _documented(name: str, handler: Handler, body: type[BaseModel], answer: type[BaseModel], summary: str) -> None:
    """One operation at its own path, its request and answer described (the dispatcher below still
    answers the other spellings: any case, and /api-signing/)."""

    async def operation(request: Request, caller: TokenInfo = Caller,
                        svc: Services = Depends(services)) -> JSONResponse:
        return await _run(handler, request, caller, svc)

    router.add_api_route(f"/api-sign/v1.0/{name}", operation, methods=["POST"], name=name, summary=summary,
                         openapi_extra=json_body(body),
                         responses={200: {"model": answer, "description": "Every session's outcome"}})


_documented("CalculateDigest", calculate_digest, CalculateDigestRequest, CalculateDigestAnswer,
            "Digests to sign with the signer's certificate, one per session")
_documented("finalizeSigning", finalize_signing, FinalizeRequest, SessionResultsAnswer,
            "Complete each session's signature with its signature value")
_documented("addArchive", add_archive, ArchiveRequest, SessionResultsAnswer,
            "Add archive time-stamps (LTA) to each session's signed document")
_documented("eSealCreate", eseal_create, ESealRequest, SessionResultsAnswer,
            "Seal each session's documents with a PKCS#12 key sent in the call")


@router.post("/api-sign/v1.0/{operation}", include_in_schema=False)
@router.post("/api-signing/v1.0/{operation}", include_in_schema=False)
async def dispatch(operation: str, request: Request, caller: TokenInfo = Caller,
                   svc: Services = Depends(services)) -> JSONResponse:
    handler = OPERATIONS.get(operation.lower())
    if handler is None:
        raise EnvelopeError(404, "unknown_operation", f"no signing operation {operation!r}")
    return await _run(handler, request, caller, svc)
