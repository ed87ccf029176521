"""Rate limits on guessing: failed logins, PINs and activation codes counted per source (the
client, the caller's network address) in the database, so every service process shares them.

Per-account locks (escalating, see ``lock_schedule``) stop guessing one account's secret; these
counters stop one source from guessing across many accounts, which per-account locks cannot see.
A source over its limit is blocked until its window ends; successes do not clear a source's
failures (an attacker could interleave its own logins to reset the count).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol
from datetime import datetime, timedelta, timezone

from sqlalchemy import delete, select

from remotesign.core.errors import CoreError
from remotesign.storage.db import Database
from remotesign.storage.models import AttemptCounter
from remotesign.storage.times import aware as _aware


class Throttled(CoreError):
    """Too many failed attempts from this source; ``retry_after`` seconds until it may try again."""

    def __init__(self, retry_after: int) -> None:
        super().__init__("too_many_attempts", "too many failed attempts; try again later", 429)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Limit:
    """At most ``failures`` failed attempts per ``window_seconds`` from one source."""

    failures: int
    window_seconds: int



def lock_duration(schedule: tuple[int, ...], level: int) -> int | None:
    """Seconds an account stays locked at its ``level``-th lock (1-based); None: locked for good
    (only a reset through the user's own channel, or the operator, lifts it)."""
    return schedule[level - 1] if 1 <= level <= len(schedule) else None


class LockableAccount(Protocol):
    """A stored account whose wrong passwords lead to escalating locks (end users, operators)."""

    password_failures: int
    lock_level: int
    locked_until: datetime | None


def settle_password_try(account: LockableAccount, right: bool, tried: int, max_attempts: int,
                        schedule: tuple[int, ...], now: datetime) -> str:
    """Record a checked password on ``account`` (its ``tried``-th try in a row, reserved before the
    check): ``ok`` clears the count and the lock; the last allowed wrong try locks for the next
    step of ``schedule`` (``locked_now``, or ``locked_permanently_now`` past its end); another
    wrong one is ``wrong_password``."""
    if right:
        account.password_failures, account.lock_level, account.locked_until = 0, 0, None
        return "ok"
    if tried < max_attempts:
        return "wrong_password"
    account.lock_level += 1
    account.password_failures = 0
    seconds = lock_duration(schedule, account.lock_level)
    account.locked_until = now + timedelta(seconds=seconds) if seconds is not None else None
    return "locked_now" if seconds is not None else "locked_permanently_now"


class AttemptThrottle:
    def __init__(self, db: Database, limits: dict[str, Limit]) -> None:
        self.db = db
        self.limits = limits

    def _limit(self, key: str) -> Limit:
        return self.limits[key.split(":", 1)[0]]

    def check(self, keys: Iterable[str]) -> None:
        """Raise Throttled if any of ``keys`` (``kind:source``) is blocked now."""
        now = datetime.now(timezone.utc)
        keys = [k[:200] for k in keys]
        with self.db.session() as s:
            rows = s.scalars(select(AttemptCounter).where(AttemptCounter.key.in_(keys))).all()
            for row in rows:
                if row.blocked_until is not None and _aware(row.blocked_until) > now:
                    raise Throttled(max(1, int((_aware(row.blocked_until) - now).total_seconds()) + 1))

    def failed(self, keys: Iterable[str]) -> None:
        """Count one failure against each of ``keys``; block a key that reached its limit."""
        now = datetime.now(timezone.utc)
        with self.db.session() as s:
            for key in (k[:200] for k in keys):
                limit = self._limit(key)
                row = s.get(AttemptCounter, key, with_for_update=True)
                window = timedelta(seconds=limit.window_seconds)
                if row is None:
                    row = AttemptCounter(key=key, failures=0, window_start=now)
                    s.add(row)
                elif _aware(row.window_start) + window <= now:
                    row.failures, row.window_start, row.blocked_until = 0, now, None
                row.failures += 1
                if row.failures >= limit.failures:
                    row.blocked_until = _aware(row.window_start) + window

    def sweep(self) -> int:
        """Forget counters whose window and block are over (called by the background sweep)."""
        longest = max((lim.window_seconds for lim in self.limits.values()), default=0)
        cutoff = datetime.now(timezone.utc) - timedelta(seconds=longest)
        with self.db.session() as s:
            return s.execute(delete(AttemptCounter).where(
                AttemptCounter.window_start < cutoff,
                (AttemptCounter.blocked_until.is_(None)) | (AttemptCounter.blocked_until < cutoff))).rowcount or 0
