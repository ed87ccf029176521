"""The audit sealer's background task: a checkpoint at start, then whenever the sealer says one
is due (N events or T seconds), and a last one at shutdown. Polling ``due()`` is an in-memory
check, so appending an event never waits for the key store or the TSA."""

from __future__ import annotations

import asyncio
import logging

from remotesign.service import Services

POLL_SECONDS = 1.0
log = logging.getLogger("remotesign")


async def seal_periodically(services: Services) -> None:
    sealer = services.audit_sealer
    due = True  # at start: seal what CLI commands or a previous run left unsealed
    from remotesign.api.app import background_leader

    while True:
        if due and background_leader(services):
            try:
                await asyncio.to_thread(sealer.seal)
            except Exception:  # noqa: BLE001 - retried at the next tick; never kill the loop
                log.exception("audit checkpoint failed")
        await asyncio.sleep(POLL_SECONDS)
        due = sealer.due()


def seal_at_shutdown(services: Services) -> None:
    try:
        services.audit_sealer.seal()
    except Exception:  # noqa: BLE001 - shutdown goes on; verify reports the unsealed tail
        log.exception("audit checkpoint at shutdown failed")
