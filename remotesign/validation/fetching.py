"""Online revocation fetching, only when the operator allows it: one pyHanko fetcher backend per
validated document, with the configured per-request timeout, closed at the end. Cross-request
caching of fetched OCSP/CRL data lives in :mod:`remotesign.core.validation`."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from pyhanko.sign.validation.policy_decl import SignatureValidationSpec
from pyhanko_certvalidator.fetchers.aiohttp_fetchers import AIOHttpFetcherBackend

log = logging.getLogger(__name__)


@asynccontextmanager
async def fetching_session(options: Any) -> AsyncIterator[AIOHttpFetcherBackend | None]:
    """A fetcher backend when ``options.allow_fetching``, else None (validation stays offline)."""
    if not options.allow_fetching:
        yield None
        return
    backend = AIOHttpFetcherBackend(per_request_timeout=options.fetch_timeout)
    try:
        yield backend
    finally:
        try:
            await backend.close()
        except Exception:  # noqa: BLE001 - closing a session must not change the report
            log.debug("closing the fetcher backend failed", exc_info=True)


def with_backend(spec: SignatureValidationSpec, backend: AIOHttpFetcherBackend | None) -> SignatureValidationSpec:
    """``spec`` gathering revocation data through ``backend`` (unchanged when None)."""
    if backend is None:
        return spec
    return dataclasses.replace(spec, revinfo_gathering_policy=dataclasses.replace(
        spec.revinfo_gathering_policy, fetcher_backend=backend))
