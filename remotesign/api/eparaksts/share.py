"""Share API (``/api-share/v1.0/``): share a session with persons named by personal code.

The vendor's page gives paths and request bodies but no answers; these answers follow the rest of
the SignAPI (``{"data": ...}``; 200 for every success; errors in the SignAPI envelope)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from remotesign.api.deps import services
from remotesign.api.eparaksts.envelope import Caller, EnvelopeError, ok
from remotesign.api.eparaksts.share_answers import SharedAnswer, SharesAnswer, UnsharedAnswer
from remotesign.api.openapi_doc import json_answer
from remotesign.core.sessions import SessionError
from remotesign.core.sharing import MAX_NOTE, MAX_PERSONS, Share, ShareError
from remotesign.core.tenants import TokenInfo
from remotesign.service import Services

router = APIRouter(prefix="/api-share/v1.0", tags=["eParaksts share"])


class Person(BaseModel):
    model_config = ConfigDict(extra="ignore")

    personId: str = Field(min_length=1, max_length=40, description="personal code XXXXXX-YYYYY")
    accessRights: Any = Field(default=None, description="kept and returned as sent")


class ShareRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    persons: list[Person] = Field(min_length=1, max_length=MAX_PERSONS)
    note: str = Field(default="", max_length=MAX_NOTE)


def _entry(share: Share) -> dict[str, Any]:
    return {"sessionId": share.session_id, "personId": share.person_id, "accessRights": share.access_rights,
            "note": share.note, "created": share.created_at.isoformat()}


def _failed(exc: SessionError | ShareError) -> EnvelopeError:
    return EnvelopeError(exc.status, exc.code, exc.message)


@router.post("/{session_id}/persons", summary="Share the session with persons", response_model=None,
             responses=json_answer(SharedAnswer, "The session's shares made by this call"))
def share(session_id: str, body: ShareRequest, caller: TokenInfo = Caller,
          svc: Services = Depends(services)) -> dict[str, Any]:
    try:
        shares = svc.sharing.share(caller.tenant_id, session_id, [(p.personId, p.accessRights) for p in body.persons],
                                   body.note, actor=caller.client_id)
    except (SessionError, ShareError) as exc:
        raise _failed(exc) from exc
    return ok({"sessionId": session_id, "persons": [_entry(x) for x in shares]})


@router.get("/{session_id}/persons", summary="Persons the session is shared with", response_model=None,
            responses=json_answer(SharesAnswer, "The session's shares"))
def persons(session_id: str, caller: TokenInfo = Caller, svc: Services = Depends(services)) -> dict[str, Any]:
    try:
        return ok([_entry(x) for x in svc.sharing.persons(caller.tenant_id, session_id)])
    except (SessionError, ShareError) as exc:
        raise _failed(exc) from exc


@router.delete("/{session_id}/persons/{person_id}", summary="Stop sharing the session with a person",
               response_model=None, responses=json_answer(UnsharedAnswer, "The share is removed"))
def unshare(session_id: str, person_id: str, caller: TokenInfo = Caller,
            svc: Services = Depends(services)) -> dict[str, Any]:
    try:
        svc.sharing.unshare(caller.tenant_id, session_id, person_id, actor=caller.client_id)
    except (SessionError, ShareError) as exc:
        raise _failed(exc) from exc
    return ok(f"Session {session_id} is no longer shared with {person_id}")


@router.get("/{person_id}/sessions", summary="The relying party's open sessions shared with a person",
            response_model=None, responses=json_answer(SharesAnswer, "The shares of the person's open sessions"))
def sessions_of(person_id: str, caller: TokenInfo = Caller, svc: Services = Depends(services)) -> dict[str, Any]:
    try:
        return ok([_entry(x) for x in svc.sharing.sessions_of(caller.tenant_id, person_id)])
    except ShareError as exc:
        raise _failed(exc) from exc
