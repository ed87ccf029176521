"""Liveness/readiness: 200 once the database answers, the blob store takes a write and the PKI is
initialised; 503 naming the failing component otherwise (a full or read-only volume, a database
that does not answer), so a load balancer stops sending work the service cannot store. 503
``"status": "draining"`` (the other fields as usual) while an operator drains the node before
stopping it (``remotesign drain``, remotesign/drain.py)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from remotesign import __version__
from remotesign.api.deps import services
from remotesign.api.openapi_doc import DESCRIPTIONS, absent
from remotesign.drain import is_draining
from remotesign.service import Services
from remotesign.storage.faults import RETRY_AFTER_SECONDS, StorageUnavailable

router = APIRouter(tags=["health"])


def _probe(check: Any) -> str:
    """'ok', or what is wrong (no paths: the endpoint is public)."""
    try:
        check()
    except StorageUnavailable:
        return "unavailable"
    except Exception as exc:  # noqa: BLE001 - health reports, never raises
        return f"unavailable ({type(exc).__name__})"
    return "ok"


def readiness(svc: Services) -> tuple[int, dict[str, Any]]:
    """What ``/health`` answers: its status code and body (the operator console shows it too). A
    draining node answers what it would otherwise, with 503 and ``"status": "draining"``."""
    status, body = _readiness(svc)
    if is_draining(svc.settings.home):
        return 503, {**body, "status": "draining"}
    return status, body


def _readiness(svc: Services) -> tuple[int, dict[str, Any]]:
    components = {"database": _probe(svc.db.ping), "blobs": _probe(svc.blobs.check_writable)}
    failing = sorted(name for name, state in components.items() if state != "ok")
    if failing:
        return 503, {"status": "degraded", "failing": failing, "components": components}
    try:
        ready = svc.ca.is_initialized()
    except StorageUnavailable:
        ready = False
    if not ready:
        return 503, {"status": "initialising", "components": components}
    from remotesign.api.background import background_leader

    return 200, {"status": "ok", "version": __version__, "key_backend": svc.keystore.backend.name,
                 "database": svc.db.engine.dialect.name, "leader": background_leader(svc), "components": components}


class HealthComponents(BaseModel):
    model_config = ConfigDict(extra="forbid")
    database: str = Field(description="ok, or what is wrong: unavailable (…)")
    blobs: str = Field(description="ok, or what is wrong: unavailable (…)")


class HealthAnswer(BaseModel):
    """What ``readiness`` answers when the service is ready (for the description only)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"status": "ok", "version": "1.0.0", "key_backend": "software", "database": "sqlite", "leader": True,
         "components": {"database": "ok", "blobs": "ok"}}]})
    status: Literal["ok"]
    version: str
    key_backend: str = Field(description="where the keys are held: software or pkcs11")
    database: str = Field(description="the database's dialect: sqlite or postgresql")
    leader: bool = Field(description="whether this process is the background leader: of all the processes and "
                                     "nodes sharing the database, the one that runs the sweeps, the audit "
                                     "checkpoints and asynchronous signature requests")
    components: HealthComponents


class HealthUnavailable(BaseModel):
    """What ``readiness`` answers with 503 (degraded: with Retry-After; draining: what the node would
    answer otherwise, its status replaced)."""

    model_config = ConfigDict(extra="forbid")
    status: Literal["degraded", "initialising", "draining"] = Field(
        description="degraded: a component fails; initialising: the PKI is not made yet; draining: an operator "
                    "is taking the node out of the load balancer before stopping it (remotesign drain)")
    failing: list[str] = absent("the failing components (degraded, or draining while degraded)")
    version: str = absent("as in the 200 answer (draining)")
    key_backend: str = absent("as in the 200 answer (draining)")
    database: str = absent("as in the 200 answer (draining)")
    leader: bool = absent("as in the 200 answer (draining)")
    components: HealthComponents


@router.get("/health", summary="Readiness check",
            responses={200: {"model": HealthAnswer, "description": "Ready"},
                       503: {"model": HealthUnavailable, "description": DESCRIPTIONS[503]}})
def health(svc: Services = Depends(services)) -> JSONResponse:
    status, body = readiness(svc)
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if body["status"] == "degraded" else None
    return JSONResponse(body, status_code=status, headers=headers)
