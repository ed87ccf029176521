"""The audit sealer's background task, run by the background leader only (one process of all those
sharing the database, api/background.py): a checkpoint as soon as a process becomes leader (at
start, or when it takes over from a leader that died), then whenever one is due (N events or T
seconds), and a last one at shutdown. ``due()`` is an in-memory check of this process's events;
the leader also asks the database once a tick whether the chain grew by N events since the last
checkpoint (events appended by the other processes and nodes), so appending an event never waits
for the key store or the TSA."""

from __future__ import annotations

import asyncio
import logging

from remotesign.api.background import background_leader
from remotesign.service import Services

POLL_SECONDS = 1.0
log = logging.getLogger("remotesign")


async def seal_periodically(services: Services) -> None:
    sealer = services.audit_sealer
    leading = False  # True once this process, leading, made (or found nothing for) its first checkpoint
    while True:
        if not background_leader(services):
            leading = False
        else:
            try:
                if not leading or sealer.due() or await asyncio.to_thread(sealer.behind):
                    await asyncio.to_thread(sealer.seal)
                leading = True
            except Exception:  # noqa: BLE001 - retried at the next tick; never kill the loop
                log.exception("audit checkpoint failed")
        await asyncio.sleep(POLL_SECONDS)


def seal_at_shutdown(services: Services) -> None:
    """The leader seals the tail as it stops (the others leave it to the next leader)."""
    if not background_leader(services):
        return
    try:
        services.audit_sealer.seal()
    except Exception:  # noqa: BLE001 - shutdown goes on; verify reports the unsealed tail
        log.exception("audit checkpoint at shutdown failed")
