"""The background leader of a serving process: whether this process runs the sweeps, the audit
sealer and the signature request runner (storage/leader.py says how one process of all those
sharing the database is chosen)."""

from __future__ import annotations

import asyncio
import weakref

from remotesign.service import Services
from remotesign.storage.leader import LeaderKeeper, leadership_for

_KEEPERS: "weakref.WeakKeyDictionary[Services, LeaderKeeper]" = weakref.WeakKeyDictionary()


async def start_leadership(services: Services) -> LeaderKeeper:
    """Try for leadership once (off the event loop), then keep confirming it in a thread."""
    keeper = _KEEPERS.get(services)
    if keeper is None:
        st = services.settings
        keeper = _KEEPERS[services] = LeaderKeeper(leadership_for(st.database_url, st.home))
        await asyncio.to_thread(keeper.check_now)
        keeper.start()
    return keeper


async def stop_leadership(services: Services) -> None:
    keeper = _KEEPERS.pop(services, None)
    if keeper is not None:
        await asyncio.to_thread(keeper.stop)


def background_leader(services: Services) -> bool:
    """Whether this process leads now (an in-memory read, cheap enough for every tick)."""
    keeper = _KEEPERS.get(services)
    return keeper is not None and keeper.leading
