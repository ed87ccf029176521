"""FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from remotesign import __version__
from remotesign.api import health, native, oauth, pki
from remotesign.api.errors import install_error_handlers
from remotesign.api.limits import BodySizeLimit
from remotesign.service import Services

DESCRIPTION = """Remote electronic-signature service: keys held for relying parties' users, a built-in
PKI (CA, CRL, OCSP, RFC 3161 TSA), OAuth2 client credentials for relying parties.

Errors of the service's own endpoints: `{"error": {"code": "...", "message": "..."}}`;
OAuth endpoints answer RFC 6749 errors; OCSP and TSA answer in their protocols."""


def create_app(services: Services) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        services.close()

    app = FastAPI(title="remotesign", version=__version__, description=DESCRIPTION, lifespan=lifespan)
    app.state.services = services
    install_error_handlers(app)
    for router in (health.router, oauth.router, pki.router, native.router):
        app.include_router(router)
    app.add_middleware(BodySizeLimit, default_limit=services.settings.max_request_bytes)
    return app
