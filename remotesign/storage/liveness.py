"""Which serving processes of other hosts are gone: each one writes a heartbeat row every few
seconds, so a lease, a temporary blob or a queued message of a process on another host (another
node, or the same container restarted: a new host to storage/process_id.py) is known dead once
that process's heartbeat is older than ``stale_after`` -- instead of waiting for its lease to run
out (minutes).

Why it is safe: a claim taken over from a process that was only stalled (not dead) is fenced
everywhere it is recorded (every move is conditional on the lease owner), and every signature
spends a one-time authorization, so a stalled process that wakes up can neither record its work
nor sign a second time. Time is the database's clock on both sides (beat and check), so nodes'
clocks may disagree. A process without a heartbeat row (a CLI command, an earlier version)
counts as possibly alive, as before. A clean stop marks the row gone at once.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import delete, func, select, update

from remotesign.storage import process_id
from remotesign.storage.db import Database
from remotesign.storage.models import ProcessHeartbeat
from remotesign.storage.times import aware

log = logging.getLogger("remotesign")
INTERVAL_SECONDS = 5.0
STALE_AFTER_SECONDS = 60.0
FORGET_AFTER = timedelta(days=2)
_GONE = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class ProcessSeen:
    """A serving process as its heartbeats show it (the operator console lists them)."""

    process: str
    host: str
    pid: int
    seconds_ago: float
    alive: bool
    this: bool


class Heartbeats:
    def __init__(self, db: Database, *, interval: float = INTERVAL_SECONDS,
                 stale_after: float = STALE_AFTER_SECONDS) -> None:
        self.db = db
        self.interval = interval
        self.stale_after = stale_after
        self._me = str(process_id.current())
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._silent: frozenset[str] = frozenset()

    def beat(self) -> None:
        """Say this process is alive, and learn which others have gone silent (both on the
        database's clock); the lease checks then read that list without a query of their own."""
        with self.db.session() as s:
            if not s.execute(update(ProcessHeartbeat).where(ProcessHeartbeat.process == self._me)
                             .values(last_seen=func.now())).rowcount:
                s.add(ProcessHeartbeat(process=self._me, last_seen=func.now()))
            s.flush()
            now = aware(s.execute(select(func.now())).scalar_one())
            silent = s.scalars(select(ProcessHeartbeat.process)
                               .where(ProcessHeartbeat.last_seen < now - timedelta(seconds=self.stale_after)))
            self._silent = frozenset(silent)

    def start(self) -> None:
        """Beat now and then every ``interval`` seconds in a thread of its own (a busy event loop
        does not silence it: only a dead or frozen process stops beating)."""
        self._me = str(process_id.current())
        self.beat()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)
        self._thread.start()
        process_id.set_remote_check(self.gone)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.beat()
            except Exception:  # noqa: BLE001 - the next beat retries; a long outage only makes us look dead
                log.warning("heartbeat failed", exc_info=True)

    def stop(self) -> None:
        """A clean stop: this process's claims may be taken over at once."""
        process_id.set_remote_check(None)
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        try:
            with self.db.session() as s:
                s.execute(update(ProcessHeartbeat).where(ProcessHeartbeat.process == self._me)
                          .values(last_seen=_GONE))
        except Exception:  # noqa: BLE001 - then it goes stale
            log.warning("could not mark this process stopped", exc_info=True)

    def gone(self, owner: process_id.ProcessId) -> bool:
        """Had ``owner`` stopped beating (for longer than ``stale_after``) at the last beat?
        Unknown to the table: no."""
        return str(owner) in self._silent

    def processes(self, within: timedelta = timedelta(hours=1)) -> list[ProcessSeen]:
        """The processes that beat within ``within`` (not those that stopped cleanly), newest first."""
        with self.db.session() as s:
            now = aware(s.execute(select(func.now())).scalar_one())
            rows = s.execute(select(ProcessHeartbeat.process, ProcessHeartbeat.last_seen)
                             .where(ProcessHeartbeat.last_seen >= now - within)
                             .order_by(ProcessHeartbeat.last_seen.desc())).all()
        out = []
        for name, seen in rows:
            parsed = process_id.ProcessId.parse(name)
            ago = max(0.0, (now - aware(seen)).total_seconds())
            out.append(ProcessSeen(name, parsed.host if parsed else "?", parsed.pid if parsed else 0, ago,
                                   ago <= self.stale_after, name == self._me))
        return out

    def sweep(self) -> int:
        """Forget processes silent for days (the background leader)."""
        with self.db.session() as s:
            now = s.execute(select(func.now())).scalar_one()
            return int(s.execute(delete(ProcessHeartbeat)
                                 .where(ProcessHeartbeat.last_seen < aware(now) - FORGET_AFTER)).rowcount)
