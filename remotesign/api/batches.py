"""Batches (native API): submit many signed documents for validation or for extension to T / LT /
LTA in one multipart call, follow the progress, fetch each result. The work runs on the job queue
(core/batches.py, jobs/queue.py); this module only translates HTTP to that service."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from remotesign.api.deps import authenticated, require_scope, services
from remotesign.api.errors import ApiError
from remotesign.api.formdata import FormDataError, read_form
from remotesign.api.openapi_doc import BINARY, errors, multipart_body, text
from remotesign.api.utc import UtcDateTime
from remotesign.api.validation_answers import ValidationAnswer
from remotesign.core import scopes
from remotesign.core.batches import BatchError, BatchView, ItemView, SubmittedDocument
from remotesign.core.tenants import TokenInfo
from remotesign.service import Services

router = APIRouter(prefix="/v1/batches", tags=["batches"])
_SCOPE = {"validation": scopes.VALIDATE, "extension": scopes.SIGNATURES}
_FIXED = ConfigDict(extra="forbid")


class ItemCounts(BaseModel):
    model_config = _FIXED
    queued: int
    running: int
    done: int
    failed: int


class BatchOut(BaseModel):
    """A batch and its progress: ``status`` is ``finished`` once every document is done or failed."""

    model_config = _FIXED
    id: str
    kind: Literal["validation", "extension"]
    status: Literal["running", "finished"]
    total: int
    items: ItemCounts
    level: str | None = Field(description="extension: the level every document is extended to")
    policy: str | None = Field(description="validation: the named policy, null for the instance's own")
    created_at: UtcDateTime
    finished_at: UtcDateTime | None
    expires_at: UtcDateTime
    callback_url: str | None = Field(default=None, description="where the batch's end is announced (a signed POST)")
    callback_status: Literal["none", "pending", "delivered", "failed"] = Field(
        default="none", description="that webhook: pending until delivered; failed after the last retry")


class ItemOut(BaseModel):
    """One document of a batch. ``outcome`` once done: validation -- signature form, number of
    signatures, how many passed and each one's indication; extension -- format, levels before and
    after, size and SHA-256 of the extended document. ``error`` once failed (or between attempts)."""

    model_config = _FIXED
    position: int
    name: str
    size: int
    sha256: str
    state: Literal["queued", "running", "done", "failed"]
    attempts: int
    outcome: dict[str, Any] | None
    error: dict[str, str] | None
    started_at: UtcDateTime | None
    finished_at: UtcDateTime | None
    result_url: str | None = Field(description="where the validation report or the extended document is fetched")


CALLBACK_FIELD = text("an absolute http(s) URL that gets a POST when the batch has finished: JSON "
                      '{"event": "batch.finished", "batch": {...}}, signed like every webhook of the service '
                      "(HMAC-SHA256 with the client's callback key, headers X-Remotesign-Timestamp and "
                      "X-Remotesign-Signature), retried with backoff until the receiver answers 2xx")


def _batch_out(view: BatchView) -> BatchOut:
    return BatchOut(id=view.id, kind=view.kind, status=view.status, total=view.total,  # type: ignore[arg-type]
                    items=ItemCounts(**view.counts), level=view.options.get("level"),
                    policy=view.options.get("policy"), created_at=view.created_at, finished_at=view.finished_at,
                    expires_at=view.expires_at, callback_url=view.callback_url,
                    callback_status=view.callback_status)  # type: ignore[arg-type]


def _item_out(batch_id: str, item: ItemView) -> ItemOut:
    outcome = {k: v for k, v in (item.outcome or {}).items() if k not in ("result", "report")} if item.outcome else None
    error = {"code": item.error_code, "message": item.error_message or ""} if item.error_code else None
    return ItemOut(position=item.position, name=item.name, size=item.size, sha256=item.sha256_hex,
                   state=item.state, attempts=item.attempts, outcome=outcome, error=error,  # type: ignore[arg-type]
                   started_at=item.started_at, finished_at=item.finished_at,
                   result_url=f"{router.prefix}/{batch_id}/items/{item.position}/result" if item.state == "done" else None)


def _core(exc: BatchError) -> ApiError:
    return ApiError(exc.status, exc.code, exc.message)


async def _submit(request: Request, caller: TokenInfo, svc: Services, kind: str) -> BatchOut:
    batches = svc.batches
    scratch = await run_in_threadpool(svc.validation.temporary_dir)
    try:
        try:
            form = await read_form(request, Path(scratch.name), max_bytes=svc.settings.batch_max_bytes,
                                   max_parts=svc.settings.batch_max_documents + 8)
        except FormDataError as exc:
            raise ApiError(400, "invalid_multipart", str(exc)) from exc
        if any(f.field != "file" for f in form.files):
            raise ApiError(400, "invalid_request", "send the documents as 'file' parts and nothing else as a file")
        for part in form.files:
            if part.size > svc.settings.file_max_bytes:
                raise ApiError(413, "file_too_large", f"{part.filename or 'a document'} is larger than "
                                                      f"{svc.settings.file_max_bytes} bytes")
        documents = [SubmittedDocument(name=f.filename or f"document-{n}", path=f.path) for n, f in enumerate(form.files)]
        options = {k: form.fields.get(k, request.query_params.get(k)) for k in ("level", "policy")}
        try:
            view = await batches.submit(caller.tenant_id, caller.client_id, kind, options, documents,
                                        callback_url=form.fields.get("callback_url") or None)
        except BatchError as exc:
            raise _core(exc) from exc
    finally:
        await run_in_threadpool(scratch.cleanup)
    return _batch_out(view)


@router.post("/validations", status_code=202, response_model=BatchOut, responses=errors(413),
             openapi_extra=multipart_body({"file": "a signed document (repeat for each)"},
                                          {"policy": text("a built-in validation policy by name"),
                                           "callback_url": CALLBACK_FIELD}, ("file",)),
             summary="Validate many signed documents in the background (multipart: file*, policy, callback_url)")
async def submit_validations(request: Request, caller: TokenInfo = Depends(require_scope(scopes.VALIDATE)),
                             svc: Services = Depends(services)) -> BatchOut:
    return await _submit(request, caller, svc, "validation")


@router.post("/extensions", status_code=202, response_model=BatchOut, responses=errors(413),
             openapi_extra=multipart_body({"file": "a signed document: PAdES, CAdES, XAdES, ASiC (repeat for each)"},
                                          {"level": text("the level to extend to", enum=["T", "LT", "LTA"]),
                                           "callback_url": CALLBACK_FIELD},
                                          ("file", "level")),
             summary="Extend many signed documents to T, LT or LTA in the background (multipart: file*, level, "
                     "callback_url)")
async def submit_extensions(request: Request, caller: TokenInfo = Depends(require_scope(scopes.SIGNATURES)),
                            svc: Services = Depends(services)) -> BatchOut:
    return await _submit(request, caller, svc, "extension")


def _readable(svc: Services, caller: TokenInfo, batch_id: str) -> BatchView:
    """The caller's batch, if its token carries the scope of the batch's kind."""
    try:
        view = svc.batches.get(caller.tenant_id, batch_id)
    except BatchError as exc:
        raise _core(exc) from exc
    scope = _SCOPE[view.kind]
    if scope not in caller.scopes:
        raise ApiError(403, "insufficient_scope", f"this batch needs scope {scope}")
    return view


@router.get("", response_model=list[BatchOut], summary="Your most recent batches (newest first, at most 100)")
def list_batches(caller: TokenInfo = Depends(authenticated), svc: Services = Depends(services)) -> list[BatchOut]:
    return [_batch_out(v) for v in svc.batches.list(caller.tenant_id) if _SCOPE[v.kind] in caller.scopes]


@router.get("/{batch_id}", response_model=BatchOut, responses=errors(403, 404), summary="A batch and its progress")
def get_batch(batch_id: str, caller: TokenInfo = Depends(authenticated), svc: Services = Depends(services)) -> BatchOut:
    return _batch_out(_readable(svc, caller, batch_id))


@router.get("/{batch_id}/items", response_model=list[ItemOut], responses=errors(403, 404),
            summary="The documents of a batch, their state and outcome")
def list_items(batch_id: str, offset: int = Query(0, ge=0), limit: int = Query(1000, ge=1, le=1000),
               caller: TokenInfo = Depends(authenticated), svc: Services = Depends(services)) -> list[ItemOut]:
    _readable(svc, caller, batch_id)
    try:
        return [_item_out(batch_id, i) for i in svc.batches.items(caller.tenant_id, batch_id, offset, limit)]
    except BatchError as exc:
        raise _core(exc) from exc


@router.get("/{batch_id}/items/{position}/result", response_class=Response, responses={
                200: {"model": ValidationAnswer,
                      "description": "validation: the JSON report (simpleReport and detailedReport); extension: the "
                                     "extended document",
                      "content": {"application/octet-stream": {"schema": dict(BINARY)}}}, **errors(403, 404, 409)},
            summary="The result of one document: its validation report or its extended file")
def item_result(batch_id: str, position: int, caller: TokenInfo = Depends(authenticated),
                svc: Services = Depends(services)) -> Response:
    _readable(svc, caller, batch_id)
    try:
        stream, media, filename = svc.batches.open_result(caller.tenant_id, batch_id, position)
    except BatchError as exc:
        raise _core(exc) from exc

    def chunks() -> Any:
        with stream:
            while chunk := stream.read(1 << 20):
                yield chunk

    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in filename)[:120] or "result"
    return StreamingResponse(chunks(), media_type=media,
                             headers={"Content-Disposition": f'attachment; filename="{safe}"'})


@router.delete("/{batch_id}", status_code=204, response_class=Response, responses=errors(403, 404),
               summary="Forget a batch, its documents and results (work still queued is dropped)")
def delete_batch(batch_id: str, caller: TokenInfo = Depends(authenticated), svc: Services = Depends(services)) -> Response:
    _readable(svc, caller, batch_id)
    try:
        svc.batches.delete(caller.tenant_id, batch_id, actor=caller.client_id)
    except BatchError as exc:
        raise _core(exc) from exc
    return Response(status_code=204)
