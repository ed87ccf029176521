"""Validation API (v1 and v2): validate a document of a processing session in place."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Depends, Query

from remotesign.api.eparaksts.envelope import Caller, EnvelopeError, ok
from remotesign.api.deps import services
from remotesign.core.sessions import SessionError
from remotesign.core.tenants import TokenInfo
from remotesign.service import Services
from remotesign.validation.model import DocumentResult, ValidationInputError
from remotesign.validation.policy import PolicyError
from remotesign.validation.reports import report_v1, report_v2

router = APIRouter(tags=["eParaksts validation"])


async def _validate(svc: Services, caller: TokenInfo, session_id: str, document_id: str,
                    policy: str | None = None) -> DocumentResult:
    try:
        svc.sessions.require(caller.tenant_id, session_id)
        doc = svc.sessions.current(caller.tenant_id, session_id, document_id)
        if doc.blob is None:
            raise EnvelopeError(400, "not_signed", f"{doc.name} is a digest-only entry, there is nothing to validate")
        namespace = svc.sessions.namespace(caller.tenant_id, session_id)
        path = svc.blobs.local_path(namespace, doc.blob)
        validation = svc.validation
        options = validation.options(caller.tenant_id, policy=validation.named_policy(policy))
        if path is not None:
            return await validation.validate(path, options, filename=doc.name)
        with validation.temporary_dir() as scratch:
            from remotesign.core.validation import copy_to
            copy = Path(scratch) / "document"
            with svc.sessions.open(caller.tenant_id, session_id, doc) as stream:
                copy_to(copy, stream)
            return await validation.validate(copy, options, filename=doc.name)
    except SessionError as exc:
        raise EnvelopeError.from_session(exc) from exc
    except ValidationInputError as exc:
        status = 503 if exc.code == "validation_timeout" else 400
        raise EnvelopeError(status, exc.code, exc.message) from exc
    except PolicyError as exc:
        raise EnvelopeError(400, "invalid_policy", str(exc)) from exc


POLICY = Query(None, max_length=100, description="validation policy: a built-in one (default, dss) or 'instance' "
                                                 "(the operator's); remotesign extension, omit for the instance's")


@router.get("/api-validation/v1.0/{session_id}/{document_id}/validate")
async def validate_v1(session_id: str, document_id: str, policy: str | None = POLICY, caller: TokenInfo = Caller,
                      svc: Services = Depends(services)) -> dict:
    return ok(report_v1(await _validate(svc, caller, session_id, document_id, policy)))


@router.get("/api-validation/v2.0/{session_id}/{document_id}/validate")
async def validate_v2(session_id: str, document_id: str, policy: str | None = POLICY, caller: TokenInfo = Caller,
                      svc: Services = Depends(services)) -> dict:
    return ok(report_v2(await _validate(svc, caller, session_id, document_id, policy)))
