"""Signature processes approved on the user's device (eSigP ``signatures/device/raw``) and their
reading, result, cancel and deletion.

``GET signatures/{id}/result`` follows TrustedX: 200 with the result once the process is final,
404 while it is still pending, 410 when it does not exist (unknown, expired, deleted, or past its
retention)."""

from __future__ import annotations

import base64
from typing import Any

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, ConfigDict, Field

from remotesign import __version__
from remotesign.api.deps import services
from remotesign.api.errors import ApiError
from remotesign.api.esigp.answers import ProcessCreated, ProcessResult, SignatureProcess
from remotesign.api.esigp.auth import (ID_PATTERN, b64, bad_request, caller, core_errors, insufficient_scope, need_any,
                                       plausible_id)
from remotesign.api.openapi_doc import json_answer
from remotesign.core.identities import IdentityError, IdentityInfo, Viewer
from remotesign.core.processes import ProcessError, ProcessInfo
from remotesign.core.scopes import IDENTITY_MANAGE, USE_DEVICE
from remotesign.core.tenants import TokenInfo
from remotesign.service import Services

router = APIRouter(tags=["esigp processes"])

READ_SCOPES = (USE_DEVICE, IDENTITY_MANAGE)
MAX_HTML = 64 * 1024


class Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class DataInfo(Lenient):
    html: str | None = Field(default=None, max_length=MAX_HTML)


class RawInput(Lenient):
    digest_value: str = Field(min_length=1, max_length=400, description="base64 of the hash to sign")
    digest_algorithm: str | None = Field(default=None, max_length=20, description="sha256 / SHA-256 / ...")
    data_info: DataInfo | None = None


class Selector(Lenient):
    id: str | None = Field(default=None, pattern=ID_PATTERN)
    labels: list[str] | None = Field(default=None, max_length=32)


class DeviceRaw(Lenient):
    input: RawInput
    sign_identities: list[Selector] = Field(min_length=1, max_length=20)
    notify: bool = True


def _signature_url(svc: Services, process_id: str) -> str:
    return f"{svc.base_url}/trustedx-resources/esigp/v1/signatures/{process_id}"


def _choose(candidates: list[IdentityInfo], selectors: list[Selector]) -> IdentityInfo | None:
    """The first enabled identity matching a selector, selectors in the caller's order."""
    for sel in selectors:
        if sel.id is None and not sel.labels:
            raise bad_request("each sign_identities entry needs id or labels")
        for identity in candidates:
            if sel.id is not None and identity.id != sel.id:
                continue
            if sel.labels and not set(sel.labels) <= set(identity.labels):
                continue
            return identity
    return None


def _result(info: ProcessInfo) -> dict[str, Any]:
    out: dict[str, Any] = {"status": info.status}
    if info.value is not None:
        out["value"] = info.value
    out["signature_algorithm"] = info.signature_algorithm
    out["sign_identity"] = info.sign_identity_id
    if info.status == "finished":
        out["device_type"] = {"id": "remotesign-approval-device", "verification_policy": "pin+device-key",
                              "application": {"id": "remotesign", "version": __version__}}
    return out


def _representation(svc: Services, token: TokenInfo, info: ProcessInfo) -> dict[str, Any]:
    url = _signature_url(svc, info.id)
    try:
        identity = svc.identities.get(info.sign_identity_id, Viewer.of(token))
        domain, labels = identity.domain, list(identity.labels)
    except IdentityError:
        domain, labels = None, []
    out: dict[str, Any] = {
        "id": info.id,
        "self": url,
        "input": {"digest_value": base64.b64encode(info.digest_value).decode(),
                  "digest_algorithm": info.digest_algorithm,
                  "data_info": {"html": info.data_info_html} if info.data_info_html else {}},
        "operation_type": info.operation_type,
        "creation_time": info.created_at.isoformat(),
        "expiration_time": info.expires_at.isoformat(),
        "sign_identity_selectors": [{"id": info.sign_identity_id, "labels": labels, "type": "pki:x509"}],
        "domain": domain,
        "status": info.status,
        "links": {"cancel": {"href": f"{url}/cancel"}, "result": {"href": f"{url}/result"}},
    }
    if info.is_final:
        out["result"] = _result(info)
    return out


def _gone(process_id: str) -> ApiError:
    shown = process_id if plausible_id(process_id) else "with that id"
    return ApiError(410, "gone", f"no signature process {shown} (unknown, expired or deleted)")


def _process(svc: Services, token: TokenInfo, process_id: str) -> ProcessInfo:
    need_any(token, *READ_SCOPES)
    info = svc.processes.get(token, process_id) if plausible_id(process_id) else None
    if info is None:
        raise _gone(process_id)
    return info


@router.post("/esigp/v1/signatures/device/raw", status_code=201,
             summary="Ask the identity owner's device to approve and sign one digest (asynchronous)",
             response_model=None, responses=json_answer(ProcessCreated, "The new process (also in Location)", 201))
def device_raw(body: DeviceRaw, response: Response, token: TokenInfo = Depends(caller),
               svc: Services = Depends(services)) -> dict[str, Any]:
    need_any(token, USE_DEVICE)
    if not token.is_user_token:
        raise insufficient_scope(USE_DEVICE)
    digest = b64(body.input.digest_value, "input.digest_value")
    candidates = [i for i in svc.identities.list(Viewer.of(token)) if i.status == "enabled"]
    identity = _choose(candidates, body.sign_identities)
    if identity is None:
        raise ApiError(404, "sign_identity_not_found", "none of your enabled sign identities matches sign_identities")
    html = body.input.data_info.html if body.input.data_info else None
    with core_errors():
        info = svc.processes.create_raw(token, identity, digest, body.input.digest_algorithm, html)
    url = _signature_url(svc, info.id)
    response.headers["Location"] = url
    return {"signature": {"id": info.id, "self": url}}


@router.get("/esigp/v1/signatures/{process_id}", summary="A signature process", response_model=None,
            responses=json_answer(SignatureProcess, "The process"))
def get_process(process_id: str, token: TokenInfo = Depends(caller),
                svc: Services = Depends(services)) -> dict[str, Any]:
    return _representation(svc, token, _process(svc, token, process_id))


@router.get("/esigp/v1/signatures/{process_id}/result",
            summary="200 with the result once final, 404 while pending, 410 when it does not exist",
            response_model=None, responses=json_answer(ProcessResult, "The outcome of the final process"))
def get_result(process_id: str, token: TokenInfo = Depends(caller),
               svc: Services = Depends(services)) -> dict[str, Any]:
    info = _process(svc, token, process_id)
    if not info.is_final:
        raise ApiError(404, "not_finished", "the signature process has not finished yet", extra={"status": info.status})
    return _result(info)


@router.post("/esigp/v1/signatures/{process_id}/cancel", summary="Cancel a pending signature process",
             response_model=None, responses=json_answer(SignatureProcess, "The process, canceled (or already final)"))
def cancel_process(process_id: str, token: TokenInfo = Depends(caller),
                   svc: Services = Depends(services)) -> dict[str, Any]:
    _process(svc, token, process_id)
    with core_errors():
        info = svc.processes.cancel(token, process_id)
    return _representation(svc, token, info)


@router.delete("/esigp/v1/signatures/{process_id}", status_code=204,
               summary="Delete a signature process (a pending one can no longer be approved)")
def delete_process(process_id: str, token: TokenInfo = Depends(caller),
                   svc: Services = Depends(services)) -> Response:
    need_any(token, *READ_SCOPES)
    if not plausible_id(process_id):
        raise _gone(process_id)
    try:
        svc.processes.delete(token, process_id)
    except ProcessError as exc:
        if exc.status == 404:
            raise _gone(process_id) from exc
        raise ApiError(exc.status, exc.code, exc.message) from exc
    return Response(status_code=204)
