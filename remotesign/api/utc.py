"""Date-times on the wire always carry their UTC offset.

SQLite hands timezone-aware columns back as naive values; serialized as they are, a client cannot
tell UTC from its own local time. Response models type their date-times ``UtcDateTime``, which reads
a naive value as UTC (the service stores nothing else) and serializes it with ``+00:00``.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated

from pydantic import AfterValidator


def as_utc(value: datetime) -> datetime:
    """``value`` in UTC; a naive value is taken to be UTC already."""
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


UtcDateTime = Annotated[datetime, AfterValidator(as_utc)]
