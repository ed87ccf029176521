"""Validation API (v1 and v2): validate a document of a processing session in place."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from remotesign.api import readable_report
from remotesign.api.eparaksts.envelope import Caller, EnvelopeError, ok
from remotesign.api.eparaksts.validation_answers import ValidationV1Answer, ValidationV2Answer
from remotesign.api.deps import services
from remotesign.core.sessions import DocumentInfo, SessionError
from remotesign.core.tenants import TokenInfo
from remotesign.service import Services
from remotesign.validation.model import DocumentResult, ValidationInputError
from remotesign.validation.options import ValidationOptions
from remotesign.validation.policy import PolicyError
from remotesign.validation.reports import report_v1, report_v2

router = APIRouter(tags=["eParaksts validation"])


async def _validate(svc: Services, caller: TokenInfo, session_id: str, document_id: str,
                    policy: str | None = None) -> DocumentResult:
    try:
        doc, path, options = await run_in_threadpool(_locate, svc, caller, session_id, document_id, policy)
        validation = svc.validation
        if path is not None:
            return await validation.validate(path, options, filename=doc.name)
        scratch = await run_in_threadpool(validation.temporary_dir)
        try:
            copy = Path(scratch.name) / "document"
            await run_in_threadpool(_copy, svc, caller, session_id, doc, copy)
            return await validation.validate(copy, options, filename=doc.name)
        finally:
            await run_in_threadpool(scratch.cleanup)
    except SessionError as exc:
        raise EnvelopeError.from_session(exc) from exc
    except ValidationInputError as exc:
        status = 503 if exc.code == "validation_timeout" else 400
        raise EnvelopeError(status, exc.code, exc.message) from exc
    except PolicyError as exc:
        raise EnvelopeError(400, "invalid_policy", str(exc)) from exc


def _locate(svc: Services, caller: TokenInfo, session_id: str, document_id: str,
            policy: str | None) -> tuple[DocumentInfo, Path | None, ValidationOptions]:
    """The document, its local path if the blob store has one, and the validation options: the
    database and file system work before a validation, run in the thread pool."""
    svc.sessions.require(caller.tenant_id, session_id)
    doc = svc.sessions.current(caller.tenant_id, session_id, document_id)
    if doc.blob is None:
        raise EnvelopeError(400, "not_signed", f"{doc.name} is a digest-only entry, there is nothing to validate")
    namespace = svc.sessions.namespace(caller.tenant_id, session_id)
    path = svc.blobs.local_path(namespace, doc.blob)
    validation = svc.validation
    return doc, path, validation.options(caller.tenant_id, policy=validation.named_policy(policy))


def _copy(svc: Services, caller: TokenInfo, session_id: str, doc: DocumentInfo, copy: Path) -> None:
    from remotesign.core.validation import copy_to

    with svc.sessions.open(caller.tenant_id, session_id, doc) as stream:
        copy_to(copy, stream)


def _reports(model: type[BaseModel]) -> dict[int | str, dict[str, Any]]:
    """The JSON report (``model``) and the readable ones, all at 200."""
    return {200: {**readable_report.DOCUMENTED[200], "model": model}}


POLICY = Query(None, max_length=100, description="validation policy: a built-in one (default, dss) or 'instance' "
                                                 "(the operator's); remotesign extension, omit for the instance's")


@router.get("/api-validation/v1.0/{session_id}/{document_id}/validate", response_model=None,
            responses=_reports(ValidationV1Answer))
async def validate_v1(session_id: str, document_id: str, request: Request, policy: str | None = POLICY,
                      caller: TokenInfo = Caller, svc: Services = Depends(services)) -> Any:
    result = await _validate(svc, caller, session_id, document_id, policy)
    readable = readable_report.asked(request)
    if readable:  # remotesign extension: the readable report (Accept: text/html or application/pdf)
        return await run_in_threadpool(readable_report.response, result, readable)
    return ok(await run_in_threadpool(report_v1, result))


@router.get("/api-validation/v2.0/{session_id}/{document_id}/validate", response_model=None,
            responses=_reports(ValidationV2Answer))
async def validate_v2(session_id: str, document_id: str, request: Request, policy: str | None = POLICY,
                      caller: TokenInfo = Caller, svc: Services = Depends(services)) -> Any:
    result = await _validate(svc, caller, session_id, document_id, policy)
    readable = readable_report.asked(request)
    if readable:
        return await run_in_threadpool(readable_report.response, result, readable)
    return ok(await run_in_threadpool(report_v2, result))
