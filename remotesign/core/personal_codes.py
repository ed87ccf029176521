"""What a personal code (ETSI EN 319 412-1 semantics identifier, ``PNOLV-DDMMYY-CNNNN``) says about
its holder. Identification answers carry the age only when it can be known: the service keeps no
birth dates, and Latvian codes issued since 2017 (``32…``) no longer encode one."""

from __future__ import annotations

import re
from datetime import date

_LV_OLD = re.compile(r"^(?:PNOLV-)?(\d{2})(\d{2})(\d{2})-?([012])\d{4}$")


def birth_date(serial_number: str | None) -> date | None:
    """The birth date encoded in an old-format Latvian personal code (century digit 0/1/2 for the
    1800s/1900s/2000s), or None."""
    m = _LV_OLD.match((serial_number or "").strip().upper())
    if m is None:
        return None
    day, month, year, century = (int(g) for g in m.groups())
    try:
        return date(1800 + 100 * century + year, month, day)
    except ValueError:
        return None


def age_on(born: date, today: date) -> int:
    """Completed years on ``today``."""
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def national_number(serial_number: str | None) -> str | None:
    """``PNOLV-010180-15097`` -> ``010180-15097``: the form the Share API names persons by."""
    value = (serial_number or "").strip().upper()
    if re.match(r"^[A-Z]{3}[A-Z]{2}-", value):
        return value[6:]
    return value or None
