"""Approval-device API (native error format): a user registers an app instance with a one-time
pairing code (shown on the activation page or sent to the user's e-mail; never the password alone,
which a relying party could have seen) and the instance's public key; the instance then long-polls for signature requests waiting for its
user and answers each with a signature of its key over the decision's text (plus the signing PIN
to approve). Possession of the device key + knowledge of the PIN = SCAL2's two factors."""

from __future__ import annotations

import asyncio
import base64
import binascii
import time
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from remotesign.api.deps import bearer_token, services
from remotesign.api.device_answers import DeviceAnswered, DeviceRegistered, DeviceRequests
from remotesign.api.errors import ApiError
from remotesign.api.openapi_doc import json_answer
from remotesign.api.same_origin import client_address
from remotesign.core.activation import ActivationError
from remotesign.core.devices import DeviceError, DeviceInfo
from remotesign.core.throttle import Throttled
from remotesign.core.identities import IdentityError, PinRefused, Viewer
from remotesign.core.processes import ProcessError, ProcessInfo
from remotesign.core.tenants import TenantError
from remotesign.core.users import UserError
from remotesign.service import Services

router = APIRouter(prefix="/v1/device", tags=["approval device"])

MAX_WAIT_SECONDS = 30.0
POLL_INTERVAL_SECONDS = 0.5
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="remotesign-device"'}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Register(Strict):
    activation_code: str = Field(min_length=1, max_length=64, description="the one-time device pairing code")
    public_key: str = Field(min_length=1, max_length=8192, description="PEM or base64 DER SubjectPublicKeyInfo")
    name: str = Field(default="", max_length=200)


class Answer(Strict):
    decision: Literal["approve", "reject"]
    signature: str = Field(min_length=1, max_length=2048,
                           description="base64 signature of the device key over the decision's text")
    pin: str | None = Field(default=None, max_length=64)


def device(request: Request, svc: Services = Depends(services)) -> DeviceInfo:
    token = bearer_token(request)
    if token is None:
        raise ApiError(401, "unauthorized", "the device's Bearer token is required", _CHALLENGE)
    found = svc.devices.authenticate(token)
    if found is None:
        raise ApiError(401, "invalid_token", "unknown or disabled device (or its user is disabled)",
                       {"WWW-Authenticate": 'Bearer realm="remotesign-device", error="invalid_token"'})
    return found


@router.post("/register", status_code=201, summary="Register an approval device with a one-time pairing code",
             response_model=None, responses=json_answer(DeviceRegistered, "The device and its token", 201))
def register(body: Register, request: Request, svc: Services = Depends(services)) -> dict[str, str]:
    try:
        info, token = svc.activation.pair_device(body.activation_code, body.public_key, body.name,
                                                 source_keys=[f"address:{client_address(request)}"])
    except Throttled as exc:
        raise ApiError(429, exc.code, exc.message, {"Retry-After": str(exc.retry_after)}) from exc
    except ActivationError as exc:
        raise ApiError(401, exc.code, exc.message) from exc
    except DeviceError as exc:
        raise ApiError(exc.status, exc.code, exc.message) from exc
    return {"device_id": info.id, "device_token": token}


def _request_json(svc: Services, p: ProcessInfo, clients: dict[str, str | None]) -> dict[str, Any]:
    if p.tenant_id not in clients:
        try:
            clients[p.tenant_id] = svc.tenants.by_client_id_or_id(p.tenant_id).name
        except TenantError:
            clients[p.tenant_id] = None
    try:
        identity = svc.identities.get(p.sign_identity_id, Viewer(None))
        subject = identity.certificate().subject.rfc4514_string()
    except IdentityError:
        subject = None
    out: dict[str, Any] = {
        "id": p.id, "operation_type": p.operation_type, "created_at": p.created_at.isoformat(),
        "expires_at": p.expires_at.isoformat(),
    }
    if clients[p.tenant_id]:
        out["client"] = clients[p.tenant_id]
    out |= {
        "identity": {"id": p.sign_identity_id, "subject": subject},
        "digest_value": base64.b64encode(p.digest_value).decode(),
        "digest_algorithm": p.digest_algorithm,
        "data_info": {"html": p.data_info_html},
        "approve_text": base64.b64encode(p.approval_text("approve")).decode(),
        "reject_text": base64.b64encode(p.approval_text("reject")).decode(),
    }
    return out


@router.get("/requests", summary="Requests waiting for this device's user; long-polls up to `wait` seconds",
            response_model=None,
            responses=json_answer(DeviceRequests, "The waiting requests (none when the wait ran out)"))
async def pending(wait: int = Query(default=0, ge=0), me: DeviceInfo = Depends(device),
                  svc: Services = Depends(services)) -> dict[str, Any]:
    deadline = time.monotonic() + min(wait, MAX_WAIT_SECONDS)
    while True:
        found = await asyncio.to_thread(svc.processes.pending_for, me)
        if found or time.monotonic() >= deadline:
            break
        await asyncio.sleep(min(POLL_INTERVAL_SECONDS, max(0.0, deadline - time.monotonic())))
    clients: dict[str, str | None] = {}
    return {"requests": await asyncio.to_thread(lambda: [_request_json(svc, p, clients) for p in found])}


@router.post("/requests/{process_id}", summary="Approve (with the PIN) or reject a request, signed by the device key",
             response_model=None, responses=json_answer(DeviceAnswered, "The request's new state"))
def answer(process_id: str, body: Answer, me: DeviceInfo = Depends(device),
           svc: Services = Depends(services)) -> dict[str, str]:
    if not (0 < len(process_id) <= 64 and all("!" <= c <= "~" for c in process_id)):
        raise ApiError(404, "not_found", "no such signature request for this device")
    try:
        signature = base64.b64decode(body.signature, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ApiError(400, "invalid_request", "signature is not valid base64") from exc
    try:
        info = svc.processes.answer(me, process_id, body.decision, signature, body.pin)
    except PinRefused as exc:
        extra: dict[str, Any] = {"remaining": exc.remaining}
        if exc.locked_until is not None:
            extra["locked_until"] = exc.locked_until.isoformat()
        raise ApiError(403, exc.code, exc.message, extra=extra) from exc
    except (ProcessError, IdentityError) as exc:
        raise ApiError(exc.status, exc.code, exc.message) from exc
    except UserError as exc:
        raise ApiError(400, exc.code, exc.message) from exc
    return {"id": info.id, "status": info.status}
