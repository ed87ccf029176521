"""``/signing/file``, ``/signing/file/authorize`` and ``GET /signing/download/file/{billCode}``
(core/signing_transactions.py, documents in core/transaction_files.py).

One file (``signingFileData``, ``signingFileName``, ``mimeType``, ``signCloudMetaData``) or several
(``multipleSigningFileData[]``, each with its own metadata) are signed as one transaction under
one authorization: ``EXPLICIT/PIN`` at once, the OTP modes after ``…/authorize`` with the code
sent to the owner. The answer carries the first signed file as ``signedFileData`` and every one
in ``multipleSignedFileData[]``; the signed files stay downloadable by ``billCode``. PDF files get
a PAdES signature shaped by the metadata (api/remote_signing/metadata.py), XML files an enveloped
XAdES signature; metadata keys not acted on are listed in ``ignoredMetaData``.
"""

from __future__ import annotations

import base64
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from remotesign.api.openapi_doc import json_body
from remotesign.api.remote_signing.answers import (Refusal, RsDownloadAnswer, RsFileAnswer, RsFileAuthorizedAnswer,
                                                   answer, documented, from_core, refused)
from remotesign.api.remote_signing.auth import Caller, caller
from remotesign.api.remote_signing.calls import handle
from remotesign.api.remote_signing.metadata import entries, signature_for
from remotesign.api.remote_signing.signing import AUTH_MODES
from remotesign.api.remote_signing.wire import RsAuthorize, RsSignFile, decode_base64
from remotesign.core import scopes
from remotesign.core.errors import CoreError
from remotesign.core.signing_transactions import Outcome
from remotesign.core.transaction_files import FileToSign, SignedFile
from remotesign.service import Services

router = APIRouter(prefix="/signing", tags=["remote-signing"])
EXTENSIONS = {"application/pdf": ".pdf", "application/xml": ".xml", "text/xml": ".xml"}


def _files(svc: Services, who: Caller, body: RsSignFile) -> tuple[list[FileToSign], list[str]]:
    given = [(body.signingFileData, body.signingFileName, body.mimeType, body.signCloudMetaData)] \
        if body.signingFileData else []
    given += [(f.signingFileData, f.signingFileName, f.mimeType, f.signCloudMetaData)
              for f in body.multipleSigningFileData or []]
    if not given:
        raise Refusal(1002, "signingFileData or multipleSigningFileData is required")
    agreement = svc.agreements.get(who.tenant.id, body.agreementUUID)
    email = agreement.details.email or agreement.contacts.otp_address("email")  # the signer's, for SHOWEMAIL
    files, ignored = [], []
    for n, (data, name, mime, metadata) in enumerate(given):
        if not mime:
            raise Refusal(1002, "mimeType is required")
        chosen = signature_for(mime, entries(metadata), email=email, policy=svc.xades_policy)
        counter_meta = entries(metadata, "counterSigning")
        counter = None
        if counter_meta:
            if chosen.spec.kind != "pades":
                raise Refusal(1011, "counterSigning is made on PDF files")
            if chosen.spec.lock:
                raise Refusal(1002, "LOCKAFTERSIGNING and counterSigning exclude each other: a locked PDF takes no "
                              "counter-signature")
            counter_chosen = signature_for(mime, counter_meta, email=None)
            counter = counter_chosen.spec
            ignored += [k for k in counter_chosen.ignored if k not in ignored]
        content = decode_base64(data, "signingFileData" if n == 0 and body.signingFileData else
                                f"multipleSigningFileData[{n}].signingFileData")
        if not content:
            raise Refusal(1002, "the file is empty")
        files.append(FileToSign(name or f"document-{n + 1}{EXTENSIONS.get(mime.lower(), '')}", mime.lower(), content,
                                chosen.spec, counter))
        ignored += [k for k in chosen.ignored if k not in ignored]
    return files, ignored


def _signed(outcome: Outcome, code: int, ignored: list[str] | None = None) -> JSONResponse:
    files = outcome.files
    many = [{"signedFileData": base64.b64encode(f.content).decode(), "mimeType": f.mime_type,
             "signedFileName": f.name, "signedFileUUID": f"{outcome.transaction_id}-{n}"}
            for n, f in enumerate(files)]
    return answer(code, billCode=outcome.transaction_id, signedFileData=many[0]["signedFileData"],
                  mimeType=many[0]["mimeType"], signedFileName=many[0]["signedFileName"],
                  signedFileUUID=many[0]["signedFileUUID"], multipleSignedFileData=many,
                  ignoredMetaData=ignored or None)


def _sign_file(svc: Services, who: Caller, body: RsSignFile) -> JSONResponse:
    method = AUTH_MODES.get(body.authMode.upper())
    if method is None:
        raise Refusal(1002, f"authMode is one of {', '.join(AUTH_MODES)}")
    files, ignored = _files(svc, who, body)
    outcome = svc.signing_transactions.request_files(
        who.tenant.id, body.agreementUUID, files, method=method, passcode=body.authorizeCode, app=body.signingApp,
        client_address=who.address, message=(body.notificationTemplate, body.notificationSubject), actor=who.actor)
    if outcome.accepted:
        return answer(1007, billCode=outcome.transaction_id, authorizeCredential=outcome.sent_to,
                      mimeType=files[0].mime_type, ignoredMetaData=ignored or None)
    return _signed(outcome, 1018 if outcome.passcode_must_change else 0, ignored)


def _authorize_file(svc: Services, who: Caller, body: RsAuthorize) -> JSONResponse:
    outcome = svc.signing_transactions.authorize(who.tenant.id, body.agreementUUID, body.billCode,
                                                 body.authorizeCode, who.actor, kind="file")
    return _signed(outcome, 0)


@router.post("/file", summary="Sign files with an agreement (passcode at once, or a code sent to the owner)",
             openapi_extra=json_body(RsSignFile), responses=documented(RsFileAnswer))
async def sign_file(request: Request) -> JSONResponse:
    return await handle(request, RsSignFile, scopes.SIGNATURES, _sign_file)


@router.post("/file/authorize", summary="Sign the files of a billCode with the code the owner received",
             openapi_extra=json_body(RsAuthorize), responses=documented(RsFileAuthorizedAnswer))
async def authorize_file(request: Request) -> JSONResponse:
    return await handle(request, RsAuthorize, scopes.SIGNATURES, _authorize_file)


def _download(svc: Services, who: Caller, bill_code: str) -> list[SignedFile]:
    return svc.signing_transactions.signed_files(who.tenant.id, bill_code)


@router.get("/download/file/{bill_code}", summary="The signed files of a billCode",
            responses=documented(RsDownloadAnswer))
async def download(bill_code: str, request: Request) -> JSONResponse:
    svc: Services = request.app.state.services
    try:
        who = await run_in_threadpool(caller, request, scopes.SIGNATURES)
        if len(bill_code) > 64:
            raise Refusal(1025, "no such billCode")
        files = await run_in_threadpool(_download, svc, who, bill_code)
    except Refusal as exc:
        return refused(exc)
    except CoreError as exc:
        return refused(from_core(exc))
    signed: list[dict[str, Any]] = [{"fileName": f.name, "base64": base64.b64encode(f.content).decode(),
                                     "mimeType": f.mime_type} for f in files]
    return answer(0, billCode=bill_code, signedFiles=signed)
