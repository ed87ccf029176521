"""The operator's name and logo on the end user's pages, so a signer sees whose service asks for
their PIN. The logo is inlined as a ``data:`` URI (the pages' Content-Security-Policy allows
images from nowhere else), read once and bounded in size and type."""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

log = logging.getLogger("remotesign.api")

MAX_LOGO_BYTES = 64 * 1024
_TYPES = {b"\x89PNG\r\n\x1a\n": "image/png", b"\xff\xd8\xff": "image/jpeg"}


@dataclass(frozen=True)
class Branding:
    name: str = "remotesign"
    logo_uri: str | None = None      # data:image/...;base64,...


def _logo_type(data: bytes) -> str | None:
    for magic, media_type in _TYPES.items():
        if data.startswith(magic):
            return media_type
    head = data[:512].lstrip().lower()
    if head.startswith(b"<svg") or (head.startswith(b"<?xml") and b"<svg" in head):
        return "image/svg+xml"   # shown through <img>: its scripts never run
    return None


@lru_cache(maxsize=8)
def branding(name: str, logo: Path | None) -> Branding:
    """The branding for the configured ``name`` and ``logo`` file; a logo that cannot be used is
    left out (and logged), never a reason for the page to fail."""
    if logo is None:
        return Branding(name)
    try:
        data = logo.read_bytes() if logo.stat().st_size <= MAX_LOGO_BYTES else b""
    except OSError as exc:
        log.warning("REMOTESIGN_OPERATOR_LOGO %s cannot be read: %s", logo, exc)
        return Branding(name)
    media_type = _logo_type(data)
    if media_type is None:
        log.warning("REMOTESIGN_OPERATOR_LOGO %s is not a PNG, JPEG or SVG of at most %d bytes", logo, MAX_LOGO_BYTES)
        return Branding(name)
    return Branding(name, f"data:{media_type};base64,{base64.b64encode(data).decode()}")


__all__ = ["Branding", "MAX_LOGO_BYTES", "branding"]
