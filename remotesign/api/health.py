"""Liveness/readiness: 200 once the database answers, the blob store takes a write and the PKI is
initialised; 503 naming the failing component otherwise (a full or read-only volume, a database
that does not answer), so a load balancer stops sending work the service cannot store."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from remotesign import __version__
from remotesign.api.deps import services
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


@router.get("/health", summary="Readiness check")
def health(svc: Services = Depends(services)) -> JSONResponse:
    components = {"database": _probe(svc.db.ping), "blobs": _probe(svc.blobs.check_writable)}
    failing = sorted(name for name, state in components.items() if state != "ok")
    if failing:
        return JSONResponse({"status": "degraded", "failing": failing, "components": components}, status_code=503,
                            headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
    try:
        ready = svc.ca.is_initialized()
    except StorageUnavailable:
        ready = False
    if not ready:
        return JSONResponse({"status": "initialising", "components": components}, status_code=503)
    return JSONResponse({"status": "ok", "version": __version__, "key_backend": svc.keystore.backend.name,
                         "database": svc.db.engine.dialect.name, "components": components})
