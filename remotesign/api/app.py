"""FastAPI application factory."""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from remotesign import __version__
from remotesign.api import (account_pages, admin, batches, consent_pages, csc, devices, docs_pages, eparaksts, esigp, fortress,
                            health, logout_page, native, oauth, openapi_doc, pki, remote_signing, request_context,
                            validation, validation_page)
from remotesign.api.console import router as console_router
from remotesign.api.admission import AdmissionGate
from remotesign.api.audit_sealing import seal_at_shutdown, seal_periodically
from remotesign.api.background import background_leader, start_leadership, stop_leadership
from remotesign.jobs.queue import run_recovery
from remotesign.api.errors import install_error_handlers
from remotesign.api.json_guard import JsonDepthGuard
from remotesign.api.limits import BodySizeLimit
from remotesign.core import offload
from remotesign.service import Services

DESCRIPTION = """Remote electronic-signature service: keys held for relying parties' users, a built-in
PKI (CA, CRL, OCSP, RFC 3161 TSA), OAuth2 client credentials for relying parties.

Errors of the service's own endpoints: `{"error": {"code": "...", "message": "..."}}`;
OAuth endpoints answer RFC 6749 errors; OCSP and TSA answer in their protocols.

Each API also has a description of its own, linked from the service's landing page (`/`)."""


def create_app(services: Services) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # What exists once the process has started (modules, mappers, the services) lives as long
        # as it does: moved out of the collector's reach, a full collection scans only what
        # requests allocate. Measured under 50 signing clients: ~110 ms full collections, each
        # stalling every request of the process, became ~10 ms.
        gc.collect()
        gc.freeze()
        await asyncio.to_thread(services.heartbeats.start)
        await start_leadership(services)
        sweeper = asyncio.create_task(_sweep_sessions(services))
        sealer = asyncio.create_task(seal_periodically(services))
        requests = asyncio.create_task(services.request_runner.run(lambda: background_leader(services)))
        await services.jobs.start()
        recovery = asyncio.create_task(run_recovery(services.jobs, lambda: background_leader(services)))
        yield
        sweeper.cancel()
        sealer.cancel()
        requests.cancel()
        recovery.cancel()
        await services.jobs.stop()
        seal_at_shutdown(services)
        await stop_leadership(services)
        await asyncio.to_thread(services.heartbeats.stop)
        services.close()

    offload.configure(services.settings.heavy_threads)
    # Python's own 5 ms GIL slices, set explicitly: measured under 50 concurrent signing clients,
    # 1 ms slices cost 5-8% of the throughput in forced thread switches (and lengthened the
    # database write sections, which wait for the GIL after every statement) while the cheap
    # calls' p99 stayed near 100 ms either way.
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
    # docs_url and redoc_url off: FastAPI's pages load Swagger UI and ReDoc from a CDN; docs_pages
    # serves them from the package.
    app = FastAPI(title="remotesign", version=__version__, description=DESCRIPTION, lifespan=lifespan,
                  docs_url=None, redoc_url=None)
    app.state.services = services
    csc.install(services)  # its asynchronous calls run on any node's job worker
    install_error_handlers(app)
    # The PKI protocol endpoints come first: routes are matched in order, and OCSP and TSA are the
    # service's highest-rate calls.
    for api, router in (("pki", pki.router), ("account", account_pages.router), ("health", health.router),
                        ("oauth", oauth.router), ("native", native.router), ("admin", admin.router),
                        ("pages", consent_pages.router), ("pages", logout_page.router), ("validation", validation.router),
                        ("validation", batches.router),
                        ("eparaksts", eparaksts.router), ("esigp", esigp.router), ("devices", devices.router),
                        ("fortress", fortress.router), ("remote_signing", remote_signing.router),
                        ("csc", csc.router), ("validation_page", validation_page.router)):
        app.include_router(router, responses=openapi_doc.API_ERRORS[api])  # what each API can answer
    app.include_router(console_router)  # the operator console (/console): HTML pages, not in the API description
    openapi_doc.install(app)
    docs_pages.install(app)
    upload_limit = services.settings.file_max_bytes + UPLOAD_OVERHEAD
    app.add_middleware(JsonDepthGuard, max_bytes=services.settings.max_request_bytes)  # inside the size limit
    # inside the size limit (an oversized request is refused before it queues), around the rest
    app.add_middleware(AdmissionGate, limit=services.settings.max_active_requests,
                       max_wait=services.settings.admission_max_wait_seconds)
    app.add_middleware(BodySizeLimit, default_limit=services.settings.max_request_bytes,
                       prefix_limits={"/api-storage/": upload_limit, "/v1/validations": upload_limit,
                                     batches.router.prefix + "/": services.settings.batch_max_bytes + UPLOAD_OVERHEAD,
                                     fortress.PREFIX + "/api/": upload_limit * 4 // 3 + UPLOAD_OVERHEAD,
                                     remote_signing.PREFIX + "/": REMOTE_SIGNING_BODY_LIMIT,
                                     CSC_SIGN_DOC: CSC_SIGN_DOC_LIMIT,
                                     validation_page.PATH: validation_page.MAX_UPLOAD + UPLOAD_OVERHEAD}, envelope_prefixes=eparaksts.PATH_PREFIXES)
    request_context.install(app)  # outermost: request ids, one-line logs, answers what escaped
    return app


SWITCH_INTERVAL_SECONDS = 0.005
UPLOAD_OVERHEAD = 64 * 1024
# registrations carry scanned forms and ID cards as base64 in their JSON
REMOTE_SIGNING_BODY_LIMIT = 32 << 20  # multipart headers and boundaries around the file
# signDoc carries its documents as base64 in JSON (parsed whole): up to 48 MiB of documents a call;
# larger files go to the APIs that stream them
CSC_SIGN_DOC = "/csc/v2/signatures/signDoc"
CSC_SIGN_DOC_LIMIT = 64 << 20
SWEEP_INTERVAL_SECONDS = 60.0


async def _sweep_sessions(services: Services) -> None:
    """Delete expired sessions' files in the background, once a minute (in one process of all
    those sharing the database: the background leader, api/background.py)."""
    while True:
        if not background_leader(services):
            await asyncio.sleep(SWEEP_INTERVAL_SECONDS)
            continue
        try:
            await asyncio.to_thread(services.sessions.sweep_expired)
            await asyncio.to_thread(services.processes.sweep)
            await asyncio.to_thread(services.signature_requests.sweep)
            await asyncio.to_thread(services.throttle.sweep)
            await asyncio.to_thread(services.signing_transactions.sweep)
            await asyncio.to_thread(services.outbox.sweep_lost)
            await asyncio.to_thread(services.signature_activation.sweep)
            await asyncio.to_thread(services.deferred_results.sweep)
            await asyncio.to_thread(services.heartbeats.sweep)
        except Exception:  # noqa: BLE001 - a failed sweep is retried next time; never kill the loop
            logging.getLogger("remotesign").exception("session sweep failed")
        await asyncio.sleep(SWEEP_INTERVAL_SECONDS)
