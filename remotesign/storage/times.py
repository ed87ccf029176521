"""Time values read back from the database: SQLite returns naive datetimes for columns declared
with a time zone, PostgreSQL aware ones. Everything stored is UTC, so naive means UTC."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import overload


@overload
def aware(value: datetime) -> datetime: ...
@overload
def aware(value: None) -> None: ...
def aware(value: datetime | None) -> datetime | None:
    """``value`` with its UTC zone attached when the database dropped it."""
    return value if value is None or value.tzinfo else value.replace(tzinfo=timezone.utc)
