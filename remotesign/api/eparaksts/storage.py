"""Storage API: upload (streamed multipart), list, download, delete, and digest-only entries."""

from __future__ import annotations

import base64
import binascii
import mimetypes
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from remotesign.api.deps import services
from remotesign.api.eparaksts.envelope import Caller, EnvelopeError, ok
from remotesign.api.eparaksts.multipart import FilePart, MultipartError, file_part
from remotesign.api.eparaksts.storage_answers import DeletedAnswer, DigestEntriesAnswer, ListAnswer, UploadAnswer
from remotesign.api.openapi_doc import binary_answer, json_answer, multipart_body
from remotesign.core.sessions import DocumentInfo, SessionError
from remotesign.core.tenants import TokenInfo
from remotesign.formats import asic
from remotesign.formats.base import FormatError
from remotesign.service import Services
from remotesign.storage.faults import StorageUnavailable

router = APIRouter(prefix="/api-storage/v1.0", tags=["eParaksts storage"])


def _entry(doc: DocumentInfo, included: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"id": doc.id, "name": doc.name, "size": doc.size,
                           "type": "hash" if doc.kind == "hash" else "file"}
    if included is not None:
        out["includedDocuments"] = included
    return out


def _describe(svc: Services, tenant_id: str, session_id: str, doc: DocumentInfo) -> dict[str, Any]:
    """A listing entry; containers also list the files inside them."""
    if doc.blob is None or doc.mime_type != asic.MIMETYPE and not doc.name.lower().endswith((".edoc", ".asice")):
        return _entry(doc)
    try:
        with svc.signing.open_container(tenant_id, session_id, doc) as container:
            included = [{"id": f"{doc.id}:{i}", "name": e.name, "size": e.size, "type": "file"}
                        for i, e in enumerate(container.data_objects)]
    except FormatError:
        return _entry(doc)
    return _entry(doc, included)


@router.api_route("/{session_id}/upload", methods=["PUT", "POST"], status_code=201,
                  openapi_extra=multipart_body({"file": "the document, streamed to disk"}, required=("file",)),
                  responses={201: {"model": UploadAnswer, "description": "The stored document"}})
async def upload(session_id: str, request: Request, caller: TokenInfo = Caller,
                 svc: Services = Depends(services)) -> JSONResponse:
    part: FilePart | None = None
    try:
        part = await file_part(request)  # its headers only: the core checks the session before it reads the file
        mime = part.content_type
        if mime in ("", "application/octet-stream"):
            mime = asic.guess_mime_type(part.filename)
        doc = await svc.sessions.upload(caller.tenant_id, session_id, part.filename, part.chunks, mime,
                                        actor=caller.client_id)
    except StorageUnavailable:
        if part is not None:
            await _drain(part)
        raise
    except SessionError as exc:
        raise EnvelopeError.from_session(exc) from exc
    except MultipartError as exc:
        raise EnvelopeError(400, "invalid_upload", str(exc)) from exc
    except ClientDisconnect as exc:
        raise EnvelopeError(413, "file_too_large", "the upload exceeds the size limit or was interrupted") from exc

    def finish() -> JSONResponse:  # the listing entry (it opens containers): off the loop
        return JSONResponse(ok(_describe(svc, caller.tenant_id, session_id, doc)), status_code=201)

    return await run_in_threadpool(finish)


async def _drain(part: FilePart) -> None:
    """Read the rest of an upload that storage refused (the body is bounded by the size limit), so the
    client, still sending, receives the 503 instead of a connection reset."""
    try:
        async for _chunk in part.chunks:
            pass
    except (MultipartError, ClientDisconnect):
        pass


@router.get("/{session_id}/list", response_model=None,
            responses=json_answer(ListAnswer, "The session's documents"))
def list_documents(session_id: str, caller: TokenInfo = Caller, svc: Services = Depends(services)) -> dict[str, Any]:
    try:
        docs = svc.sessions.visible(caller.tenant_id, session_id)
    except SessionError as exc:
        raise EnvelopeError.from_session(exc) from exc
    return ok([_describe(svc, caller.tenant_id, session_id, d) for d in docs])


class DigestFile(BaseModel):
    name: str = Field(min_length=1, max_length=255)
    digest: str
    digest_algorithm: str = "SHA256"


class DigestRequest(BaseModel):
    files: list[DigestFile] = Field(min_length=1, max_length=1000)
    signatureIndex: int | str = "0"


@router.post("/{session_id}/addDocumentDigest",
             responses={200: {"model": DigestEntriesAnswer, "description": "The digest-only entries added"}})
def add_document_digest(session_id: str, body: DigestRequest, caller: TokenInfo = Caller,
                        svc: Services = Depends(services)) -> JSONResponse:
    try:
        index = int(body.signatureIndex)
    except ValueError as exc:
        raise EnvelopeError(400, "invalid_signature_index", "signatureIndex must be a number") from exc
    if not 0 <= index <= 999:
        raise EnvelopeError(400, "invalid_signature_index", "signatureIndex must be between 0 and 999")
    files = []
    for f in body.files:
        if f.digest_algorithm.upper().replace("-", "") != "SHA256":
            raise EnvelopeError(400, "unsupported_digest_algorithm", "only SHA256 digests are accepted")
        try:
            files.append((f.name, base64.b64decode(f.digest, validate=True)))
        except (binascii.Error, ValueError) as exc:
            raise EnvelopeError(400, "invalid_base64", f"digest of {f.name} is not valid base64") from exc
    try:
        docs = svc.sessions.add_digests(caller.tenant_id, session_id, files, index)
    except SessionError as exc:
        raise EnvelopeError.from_session(exc) from exc
    return JSONResponse(ok([_entry(d) for d in docs]), status_code=200)  # the PHP client requires 200


@router.get("/{session_id}/{document_id}", response_class=Response, responses=binary_answer(
    "*/*", description="The document's bytes, with its own media type (as uploaded, or guessed from its name; "
                       "application/octet-stream with type=asice), as an attachment"))
def download(session_id: str, document_id: str, type: str | None = Query(default=None),  # noqa: A002
             caller: TokenInfo = Caller, svc: Services = Depends(services)) -> StreamingResponse:
    try:
        doc = svc.sessions.current(caller.tenant_id, session_id, document_id)
        content = svc.sessions.iter_content(caller.tenant_id, session_id, doc)
        if doc.blob is None:
            raise SessionError(409, "no_content", f"{doc.name} is a digest-only entry without content")
    except SessionError as exc:
        raise EnvelopeError.from_session(exc) from exc
    name = doc.name
    if type == "asice" and name.lower().endswith(".edoc"):
        name = name[:-5] + ".asice"
    media = doc.mime_type or mimetypes.guess_type(name)[0] or "application/octet-stream"
    quoted = name.encode("ascii", "replace").decode().replace('"', "")
    from urllib.parse import quote

    headers = {"Content-Disposition": f"attachment; filename=\"{quoted}\"; filename*=UTF-8''{quote(name)}",
               "Content-Length": str(doc.size)}
    return StreamingResponse(content, media_type=media if type != "asice" else "application/octet-stream",
                             headers=headers)


@router.delete("/{session_id}/{document_id}", response_model=None,
               responses=json_answer(DeletedAnswer, "The document is deleted"))
def delete_document(session_id: str, document_id: str, caller: TokenInfo = Caller,
                    svc: Services = Depends(services)) -> dict[str, Any]:
    try:
        svc.sessions.delete_document(caller.tenant_id, session_id, document_id)
    except SessionError as exc:
        raise EnvelopeError.from_session(exc) from exc
    return ok({"id": document_id, "deleted": True})
