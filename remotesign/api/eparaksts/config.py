"""Config API: the relying party's limits and the public key for e-seal passwords.

The vendor documents the fields under ``data``; the PHP client reads ``publicKey`` and
``fileMaxLength`` at the top level. Both are served: the fields appear in ``data`` and again at the
top level of the same answer."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from remotesign.api.deps import services
from remotesign.api.eparaksts.config_answers import ConfigAnswer, PublicKeyAnswer
from remotesign.api.eparaksts.envelope import Caller, ok
from remotesign.api.openapi_doc import json_answer
from remotesign.core.tenants import TokenInfo
from remotesign.service import Services

router = APIRouter(prefix="/api-config/v1.0", tags=["eParaksts config"])


@router.get("/", response_model=None, responses=json_answer(ConfigAnswer, "The relying party's limits"))
def configuration(caller: TokenInfo = Caller, svc: Services = Depends(services)) -> dict[str, Any]:
    tenant = svc.tenants.by_client_id(caller.client_id)
    created = tenant.created_at.replace(tzinfo=None).isoformat() if tenant else None
    return _both({"oauthClientId": caller.client_id, "name": tenant.name if tenant else caller.client_id,
                  "created": created, "changed": created, "fileMaxLength": svc.settings.file_max_bytes,
                  "sessionExpirationTimeout": svc.settings.session_timeout_seconds})


@router.get("/public/key", response_model=None,
            responses=json_answer(PublicKeyAnswer, "The key e-seal passwords are encrypted with"))
def public_key(caller: TokenInfo = Caller, svc: Services = Depends(services)) -> dict[str, Any]:
    return _both({"publicKey": svc.transport.public_pem(), "algorithm": "RSA",
                  "padding": "PKCS1-v1_5", "paddings": ["PKCS1-v1_5", "OAEP-SHA1"]})


def _both(fields: dict[str, Any]) -> dict[str, Any]:
    """``{"data": fields, **fields}``: the documented envelope and the PHP client's top level."""
    return {**ok(fields), **fields}
