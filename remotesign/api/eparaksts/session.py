"""Session API: ``GET /api-session/v1.0/start[?amount=N]`` and ``GET …/{sessionId}/close``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse

from remotesign.api.deps import services
from remotesign.api.eparaksts.envelope import Caller, EnvelopeError, ok
from remotesign.api.eparaksts.storage_answers import ClosedAnswer, StartAnswer
from remotesign.api.openapi_doc import json_answer
from remotesign.core.sessions import SessionError
from remotesign.core.tenants import TokenInfo
from remotesign.service import Services

router = APIRouter(prefix="/api-session/v1.0", tags=["eParaksts session"])


@router.get("/start", status_code=201, responses={201: {"model": StartAnswer, "description": "The sessions started"}})
def start(amount: int | None = Query(default=None), caller: TokenInfo = Caller,
          svc: Services = Depends(services)) -> JSONResponse:
    try:
        ids = svc.sessions.start(caller.tenant_id, amount or 1)
    except SessionError as exc:
        raise EnvelopeError.from_session(exc) from exc
    # The vendor documents sessionIds for amount=N and sessionId without it; clients that always send
    # amount (the PHP library sends amount=1) read sessionId, so one session answers both names.
    data: dict[str, Any] = {"sessionId": ids[0]} if len(ids) == 1 else {}
    if amount is not None:
        data["sessionIds"] = ids
    body: dict[str, Any] = ok(data)
    return JSONResponse(body, status_code=201)


@router.get("/{session_id}/close", response_model=None, responses=json_answer(ClosedAnswer, "The session is closed"))
def close(session_id: str, caller: TokenInfo = Caller, svc: Services = Depends(services)) -> dict[str, Any]:
    try:
        svc.sessions.close(caller.tenant_id, session_id, actor=caller.client_id)
    except SessionError as exc:
        raise EnvelopeError.from_session(exc) from exc
    return ok(f"Session {session_id} closed")
