"""Liveness/readiness: 200 once the database answers and the PKI is initialised."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from remotesign import __version__
from remotesign.api.deps import services
from remotesign.service import Services

router = APIRouter(tags=["health"])


@router.get("/health", summary="Readiness check")
def health(svc: Services = Depends(services)) -> JSONResponse:
    try:
        svc.db.ping()
        ready = svc.ca.is_initialized()
    except Exception as exc:  # noqa: BLE001 - health reports, never raises
        return JSONResponse({"status": "unavailable", "reason": type(exc).__name__}, status_code=503)
    if not ready:
        return JSONResponse({"status": "initialising"}, status_code=503)
    return JSONResponse({"status": "ok", "version": __version__, "key_backend": svc.keystore.backend.name,
                         "database": svc.db.engine.dialect.name})
